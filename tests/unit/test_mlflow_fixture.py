import requests

from devstack.mlflow_server import MlflowServer


def test_the_two_servers_are_distinct_and_answer(mlflow_src: MlflowServer, mlflow_dst: MlflowServer) -> None:
    assert mlflow_src.uri != mlflow_dst.uri
    for server in (mlflow_src, mlflow_dst):
        reply = requests.post(f"{server.uri}/api/2.0/mlflow/experiments/search",
                              json={"max_results": 10}, timeout=10)
        assert reply.status_code == 200
        assert "Default" in [e["name"] for e in reply.json()["experiments"]]
