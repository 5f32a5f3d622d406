"""A prompt named where registered models are selected is skipped with a line, never exported as a model.

MLflow 3 keeps a prompt as a registered model tagged ``mlflow.prompt.is_prompt``; export-prompts
(and ``spec.objects.prompts``) carry prompts, export-models and ``spec.objects.models`` do not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import mlflow
import pytest

from devstack.mlflow_server import MlflowServer
from ferry.engine.service import export_objects
from ferry.options import ExportOptions, Selection
from tests.engine.registry_seed import SeededModel, seed_model

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def model_and_prompt(mlflow_src: MlflowServer, tmp_path_factory: pytest.TempPathFactory) -> tuple[SeededModel, str]:
    prefix = f"mp-{uuid.uuid4().hex[:8]}"
    model = seed_model(mlflow_src.uri, f"{prefix}-model", tmp_path_factory.mktemp("mp"), versions=1)
    mlflow.set_tracking_uri(mlflow_src.uri)
    prompt = f"{prefix}-prompt"
    mlflow.genai.register_prompt(name=prompt, template="Answer {{question}}.")
    return model, prompt


def _cli(uri: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / args[0]), *args[1:], "--quiet"], env={**os.environ, "MLFLOW_TRACKING_URI": uri},
                          capture_output=True, text=True, timeout=300)


def test_export_models_skips_a_named_prompt_with_a_line(model_and_prompt: tuple[SeededModel, str],
                                                        mlflow_src: MlflowServer, tmp_path: Path) -> None:
    model, prompt = model_and_prompt
    out = tmp_path / "models"
    done = _cli(mlflow_src.uri, "export-models", "--models", f"{model.name},{prompt}", "--output-dir", str(out))
    assert done.returncode == 3, done.stderr
    assert done.stderr.splitlines() == [
        f"Failed: model '{prompt}': not carried: it is a prompt (mlflow.prompt.is_prompt), not a registered "
        "model; export it with export-prompts"]
    assert json.loads((out / "models" / "models.json").read_text())["mlflow"]["models"] == [model.name]
    assert not (out / "models" / prompt).exists()

    only = _cli(mlflow_src.uri, "export-models", "--models", prompt, "--output-dir", str(tmp_path / "only"))
    assert only.returncode == 1 and "export it with export-prompts" in only.stderr

    prefix = _cli(mlflow_src.uri, "export-models", "--models", f"{model.name.rsplit('-', 1)[0]}*",
                  "--output-dir", str(tmp_path / "prefix"))
    assert prefix.returncode == 0, prefix.stderr
    listed = json.loads((tmp_path / "prefix" / "models" / "models.json").read_text())["mlflow"]["models"]
    assert listed == [model.name]


def test_export_model_refuses_a_prompt(model_and_prompt: tuple[SeededModel, str], mlflow_src: MlflowServer,
                                       tmp_path: Path) -> None:
    _, prompt = model_and_prompt
    done = _cli(mlflow_src.uri, "export-model", "--model", prompt, "--output-dir", str(tmp_path / "one"))
    assert (done.returncode, done.stderr.strip()) == (
        1, f"Error: registered model '{prompt}' is a prompt (mlflow.prompt.is_prompt): export it with export-prompts")
    assert not (tmp_path / "one" / "model.json").exists()


def test_selection_models_skip_a_prompt(model_and_prompt: tuple[SeededModel, str], mlflow_src: MlflowServer,
                                        tmp_path: Path) -> None:
    model, prompt = model_and_prompt
    outcome = export_objects(mlflow_src.uri, tmp_path / "job", Selection(models=[model.name, prompt]),
                             ExportOptions())
    assert outcome.phase == "PartiallyFailed"
    assert outcome.failed == [f"model '{prompt}': not carried: it is a prompt (mlflow.prompt.is_prompt), not a "
                              "registered model; select it in spec.objects.prompts"]
    assert outcome.counts.models == 1
    assert not (tmp_path / "job" / "models" / prompt).exists()
