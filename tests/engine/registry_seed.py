"""Seed a registered model through the real MLflow client: what the registry tests compare.

Eleven versions (so that 10 must come after 9, not after 1), runs spread over two experiments,
every stage, aliases, tags and descriptions on the model and on each version.
"""

from __future__ import annotations

import tempfile
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus

STAGE_OF = {2: "Production", 3: "Staging", 5: "Archived", 10: "Staging", 11: "Production"}
ALIASES = {"champion": "11", "previous": "2", "ten": "10"}


@dataclass
class SeededModel:
    uri: str
    name: str
    experiments: list[str]
    run_of_version: dict[str, str]

    @property
    def versions(self) -> list[str]:
        return sorted(self.run_of_version, key=int)


def model_files(scratch: Path, version: int) -> Path:
    files = scratch / f"model-{version}"
    (files / "model").mkdir(parents=True, exist_ok=True)
    (files / "model" / "MLmodel").write_text(f"artifact_path: model\nflavors: {{}}\nversion: {version}\n")
    (files / "model" / "weights.bin").write_bytes(bytes([version]) * 512)
    return files / "model"


def seed_model(uri: str, name: str, scratch: Path, *, versions: int = 11, aliases: bool = True) -> SeededModel:
    """`aliases=False` for a Databricks workspace registry, which has none (MLflow's client refuses them)."""
    client = MlflowClient(tracking_uri=uri)
    experiments = [f"{name}-train", f"{name}-tune"]
    exp_ids = [client.create_experiment(e, tags={"purpose": e.rsplit("-", 1)[1]}) for e in experiments]
    client.create_registered_model(name, tags={"owner": "ml-team", "domain": "wine"},
                                   description=f"The {name} model")
    run_of_version: dict[str, str] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # stages are deprecated, still served
        for i in range(1, versions + 1):
            run = client.create_run(exp_ids[i % 2], run_name=f"train-{i}", tags={"attempt": str(i)})
            run_id = run.info.run_id
            client.log_param(run_id, "version", str(i))
            client.log_metric(run_id, "acc", i / 100, step=i)
            client.log_artifacts(run_id, str(model_files(scratch, i)), "model")
            client.set_terminated(run_id)
            version = client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id,
                                                  tags={"n": str(i), "parity": "odd" if i % 2 else "even"},
                                                  description=f"version number {i}")
            run_of_version[version.version] = run_id
            if i in STAGE_OF:
                client.transition_model_version_stage(name, version.version, STAGE_OF[i])
    for alias, version in ALIASES.items() if aliases else ():
        if int(version) <= versions:
            client.set_registered_model_alias(name, alias, version)
    return SeededModel(uri, name, experiments, run_of_version)


_SHARED: dict[str, SeededModel] = {}


def shared_model(uri: str) -> SeededModel:
    """One 11-version model per server and test process, for tests that only read it."""
    if uri not in _SHARED:
        _SHARED[uri] = seed_model(uri, f"shared-{uuid.uuid4().hex[:8]}", Path(tempfile.mkdtemp(prefix="model-")))
    return _SHARED[uri]


def seed_logged_model_version(uri: str, name: str, scratch: Path) -> tuple[str, str]:
    """A model whose version 1 is an MLflow 3 logged model (source ``models:/<id>``); returns (run, model id)."""
    client = MlflowClient(tracking_uri=uri)
    exp_id = client.create_experiment(f"{name}-exp")
    run = client.create_run(exp_id, run_name="fit")
    logged = client.create_logged_model(exp_id, name="classifier", source_run_id=run.info.run_id,
                                        params={"depth": "4"}, tags={"flavor": "sklearn"}, model_type="clf")
    client.log_model_artifacts(logged.model_id, str(model_files(scratch, 7)))
    client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    client.set_terminated(run.info.run_id)
    client.create_registered_model(name)
    client.create_model_version(name, f"models:/{logged.model_id}", run.info.run_id, model_id=logged.model_id,
                                description="from a logged model")
    return run.info.run_id, logged.model_id
