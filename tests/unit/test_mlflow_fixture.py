import requests

from devstack.mlflow_server import MlflowServer


def test_the_two_servers_are_distinct_and_answer(mlflow_src: MlflowServer, mlflow_dst: MlflowServer) -> None:
    assert mlflow_src.uri != mlflow_dst.uri
    for server in (mlflow_src, mlflow_dst):
        reply = requests.get(f"{server.uri}/api/2.0/mlflow/experiments/get-by-name",
                             params={"experiment_name": "Default"}, timeout=10)
        assert reply.status_code == 200
        assert reply.json()["experiment"]["experiment_id"] == "0"
