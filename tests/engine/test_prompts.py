"""MLflow 3 prompts: export to the peer's layout, import into a second real server, compare.

Seeded only through ``mlflow.genai``; compared through MLflow's own client on both servers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow
import mlflow.prompt.constants as mlflow_constants
import pytest
from mlflow import MlflowClient

from devstack.mlflow_server import MlflowServer
from ferry.engine import prompt_format
from ferry.engine.models_bulk import resolve_models
from ferry.engine.prompts import export_prompt, export_prompts, import_prompt, import_prompts
from ferry.tracking import TrackingClient
from ferry.tracking.prompts import Prompts
from ferry.tracking.registry import Registry
from tests.engine.conftest import Pair, on_pair
from tests.engine.peer_tools import peer, require_peer
from tests.engine.prompt_seed import ALIASES, SeededPrompts, prompt_view, seed_prompts, version_view

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def seeded_prompts(mlflow_src: MlflowServer) -> SeededPrompts:
    return seed_prompts(mlflow_src.uri, f"p{os.getpid()}")


@pytest.fixture(scope="module")
def exported(seeded_prompts: SeededPrompts, src_client: TrackingClient,
             tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_seeded(seeded_prompts, src_client, tmp_path_factory)


@pytest.fixture
def pair_prompts(pair: Pair, request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> tuple[SeededPrompts, Path]:
    """The seeded prompts and their export, on the pair's source."""
    seeded = on_pair(pair, request, "seeded_prompts", "prompts", lambda: seed_prompts(pair.src.uri, f"p{os.getpid()}"))
    return seeded, on_pair(pair, request, "exported", "prompts-export",
                           lambda: export_seeded(seeded, pair.src_client, tmp_path_factory))


def export_seeded(seeded_prompts: SeededPrompts, src_client: TrackingClient,
                  tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("prompts") / "out"
    outcome = export_prompts(src_client, [seeded_prompts.text, seeded_prompts.chat], out, workers=2)
    assert outcome.phase == "Succeeded", outcome.failed
    assert (outcome.counts.prompts, outcome.counts.prompt_versions) == (2, 13)
    return out


def _rename(src: Path, dst: Path, suffix: str) -> Path:
    """A copy of an export whose prompts are renamed, so that each test imports its own prompts."""
    for path in src.rglob("*.json"):
        doc = json.loads(path.read_text())
        entry = doc["mlflow"].get("prompt")
        target = dst / path.relative_to(src)
        if entry:
            entry["name"] = f"{entry['name']}-{suffix}"
            target = dst / prompt_format.version_dir_name(entry["name"], entry["version"]) / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(doc))
    return dst


def test_tag_names_are_mlflows() -> None:
    assert prompt_format.TEXT_TAG == mlflow_constants.PROMPT_TEXT_TAG_KEY
    assert prompt_format.TYPE_TAG == mlflow_constants.PROMPT_TYPE_TAG_KEY
    assert prompt_format.RESPONSE_FORMAT_TAG == mlflow_constants.RESPONSE_FORMAT_TAG_KEY
    assert prompt_format.MODEL_CONFIG_TAG == mlflow_constants.PROMPT_MODEL_CONFIG_TAG_KEY
    assert prompt_format.EXPERIMENT_IDS_TAG == mlflow_constants.PROMPT_EXPERIMENT_IDS_TAG_KEY
    assert prompt_format.RUN_IDS_TAG == mlflow_constants.PROMPT_ASSOCIATED_RUN_IDS_TAG_KEY
    assert prompt_format.VARIABLE_PATTERN.pattern == mlflow_constants.PROMPT_TEMPLATE_VARIABLE_PATTERN.pattern


def test_export_layout_is_the_peers(exported: Path, seeded_prompts: SeededPrompts) -> None:
    name = seeded_prompts.text
    assert sorted(p.name for p in exported.iterdir()) == sorted(
        [prompt_format.SUMMARY_FILE] + [f"{name}_v{v}" for v in range(1, 12)]
        + [f"{seeded_prompts.chat}_v{v}" for v in (1, 2)])
    doc = json.loads((exported / f"{name}_v4" / "prompt.json").read_text())
    assert set(doc) == {"system", "mlflow"}
    entry = doc["mlflow"]["prompt"]
    loaded = MlflowClient(tracking_uri=seeded_prompts.uri).get_prompt_version(name, 4)
    assert (entry["name"], entry["version"], entry["template"]) == (name, 4, loaded.template)
    assert entry["tags"] == loaded.tags and entry["commit_message"] == "change 4"
    assert entry["variables"] == sorted(loaded.variables)
    assert entry["response_format"] == loaded.response_format and entry["response_format"]["title"] == "Answer"
    summary = json.loads((exported / prompt_format.SUMMARY_FILE).read_text())["mlflow"]
    assert summary == {"total_prompts": 13, "successful_exports": 13, "failed_exports": 0}


def test_round_trip_field_by_field(pair: Pair, pair_prompts: tuple[SeededPrompts, Path], tmp_path: Path,
                                   unique: str) -> None:
    (seeded_prompts, exported), mlflow_src, mlflow_dst, dst_client = pair_prompts, pair.src, pair.dst, pair.dst_client
    copy = _rename(exported, tmp_path / "renamed", unique)
    outcome = import_prompts(dst_client, copy, workers=2)
    assert outcome.phase == "Succeeded", outcome.failed
    assert (outcome.counts.prompts, outcome.counts.prompt_versions) == (2, 13)
    for name in (seeded_prompts.text, seeded_prompts.chat):
        src, dst = prompt_view(mlflow_src.uri, name), prompt_view(mlflow_dst.uri, f"{name}-{unique}")
        assert dst == src
    text = prompt_view(mlflow_dst.uri, f"{seeded_prompts.text}-{unique}")
    assert text["aliases"] == ALIASES
    assert [v["is_text"] for v in text["versions"]] == [v % 3 != 0 for v in range(1, 12)]
    assert text["versions"][4]["model_config"] == {"model_name": "gpt-4o", "temperature": 0.5}
    assert text["tags"]["step"] == "overridden at the prompt level"
    src_tags = MlflowClient(tracking_uri=mlflow_src.uri).get_prompt(seeded_prompts.text).tags
    dst_tags = MlflowClient(tracking_uri=mlflow_dst.uri).get_prompt(f"{seeded_prompts.text}-{unique}").tags
    assert "_mlflow_experiment_ids" not in dst_tags  # the source's experiment ids name nothing here
    assert dst_tags["ferry.source.experiment_ids"] == src_tags["_mlflow_experiment_ids"]

    again = import_prompts(dst_client, copy)
    assert again.phase == "Succeeded", again.failed
    assert again.counts.objects == 0
    assert prompt_view(mlflow_dst.uri, f"{seeded_prompts.text}-{unique}") == prompt_view(mlflow_src.uri,
                                                                                         seeded_prompts.text)


def test_one_version_into_a_renamed_prompt(seeded_prompts: SeededPrompts, src_client: TrackingClient,
                                           mlflow_src: MlflowServer, mlflow_dst: MlflowServer,
                                           dst_client: TrackingClient, tmp_path: Path, unique: str) -> None:
    out = tmp_path / "one"
    assert export_prompt(src_client, seeded_prompts.text, "10", out).phase == "Succeeded"
    assert [p.name for p in out.iterdir()] == ["prompt.json"]
    name = f"single-{unique}"
    outcome = import_prompt(dst_client, out, prompt_name=name)
    assert (outcome.phase, outcome.counts.prompts, outcome.counts.prompt_versions) == ("Succeeded", 1, 1)
    assert import_prompt(dst_client, out, prompt_name=name).counts.objects == 0

    view = prompt_view(mlflow_dst.uri, name)
    source = version_view(MlflowClient(tracking_uri=mlflow_src.uri).get_prompt_version(seeded_prompts.text, 10))
    assert view["versions"] == [{**source, "version": 1}]
    assert view["aliases"] == {"ten": 1}
    assert view["tags"] == prompt_view(mlflow_src.uri, seeded_prompts.text)["tags"]


def test_delete_prompt_replaces_what_the_destination_had(exported: Path, seeded_prompts: SeededPrompts,
                                                         mlflow_src: MlflowServer, mlflow_dst: MlflowServer,
                                                         dst_client: TrackingClient, tmp_path: Path,
                                                         unique: str) -> None:
    copy = _rename(exported, tmp_path / "renamed", unique)
    name = f"{seeded_prompts.chat}-{unique}"
    mlflow.set_tracking_uri(mlflow_dst.uri)
    mlflow.genai.register_prompt(name=name, template="stray {{x}}", tags={"stray": "yes"})
    merged = import_prompts(dst_client, copy)
    assert merged.phase == "Succeeded", merged.failed
    assert len(prompt_view(mlflow_dst.uri, name)["versions"]) == 3  # appended after the stray one

    replaced = import_prompts(dst_client, copy, delete_prompt=True)
    assert replaced.phase == "Succeeded", replaced.failed
    assert prompt_view(mlflow_dst.uri, name) == prompt_view(mlflow_src.uri, seeded_prompts.chat)


def test_a_registered_model_of_that_name_is_listed_as_failed(exported: Path, seeded_prompts: SeededPrompts,
                                                             mlflow_dst: MlflowServer, dst_client: TrackingClient,
                                                             tmp_path: Path, unique: str) -> None:
    copy = _rename(exported, tmp_path / "renamed", unique)
    taken = f"{seeded_prompts.chat}-{unique}"
    MlflowClient(tracking_uri=mlflow_dst.uri).create_registered_model(taken)
    outcome = import_prompts(dst_client, copy, delete_prompt=True)
    assert outcome.phase == "PartiallyFailed"
    assert outcome.failed == [f"prompt '{taken}': '{taken}' is a registered model, not a prompt, "
                              f"in MLflow at {mlflow_dst.uri}"]
    assert Registry(dst_client).find_model(taken) is not None  # --delete-prompt never deletes a model
    assert outcome.counts.prompt_versions == 11


def test_missing_prompt_is_listed_as_failed(src_client: TrackingClient, tmp_path: Path, unique: str) -> None:
    outcome = export_prompts(src_client, [f"nothing-{unique}"], tmp_path / "out")
    assert outcome.phase == "Failed"
    assert outcome.failed == [f"prompt 'nothing-{unique}': prompt 'nothing-{unique}' not found in MLflow at "
                              f"{src_client.uri}"]


def test_models_export_does_not_pick_prompts_up(seeded_prompts: SeededPrompts, src_client: TrackingClient) -> None:
    names = resolve_models(Registry(src_client), "all")
    assert seeded_prompts.text not in names and seeded_prompts.chat not in names
    assert {seeded_prompts.text, seeded_prompts.chat} <= set(Prompts(src_client).names())


def test_commands(seeded_prompts: SeededPrompts, mlflow_src: MlflowServer, mlflow_dst: MlflowServer,
                  tmp_path: Path, unique: str) -> None:
    out = tmp_path / "cli"
    run = _cli(mlflow_src.uri, "export-prompts", "--output-dir", str(out), "--prompts",
               f"{seeded_prompts.chat},{seeded_prompts.text}", "--use-threads")
    assert run.stdout.startswith("exported 2 prompts, 13 versions"), run.stdout
    copy = _rename(out, tmp_path / "renamed", unique)
    run = _cli(mlflow_dst.uri, "import-prompts", "--input-dir", str(copy), "--delete-prompt", "True")
    assert run.stdout.startswith("imported 2 prompts, 13 versions"), run.stdout
    assert prompt_view(mlflow_dst.uri, f"{seeded_prompts.text}-{unique}") == prompt_view(mlflow_src.uri,
                                                                                         seeded_prompts.text)
    single = tmp_path / "single"
    _cli(mlflow_src.uri, "export-prompt", "--prompt-name", seeded_prompts.chat, "--prompt-version", "2",
         "--output-dir", str(single))
    _cli(mlflow_dst.uri, "import-prompt", "--input-dir", str(single), "--prompt-name", f"cli-{unique}")
    assert prompt_view(mlflow_dst.uri, f"cli-{unique}")["aliases"] == {"newest": 1}
    failed = subprocess.run([str(BIN / "export-prompt"), "--prompt-name", f"none-{unique}", "--prompt-version",
                             "1", "--output-dir", str(tmp_path / "x")], env={**os.environ,
                            "MLFLOW_TRACKING_URI": mlflow_src.uri}, capture_output=True, text=True, timeout=120)
    assert (failed.returncode, failed.stderr.strip()) == (
        1, f"Error: prompt 'none-{unique}' not found in MLflow at {mlflow_src.uri}")


def _cli(uri: str, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(BIN / tool), *args, "--quiet"], env={**os.environ, "MLFLOW_TRACKING_URI": uri},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{tool}: {done.stdout}\n{done.stderr}"
    return done


# -- interop with mlflow-export-import 1.2.1 -------------------------------------------------------


@pytest.fixture(scope="module")
def peer_src(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A server of its own: the peer's export-prompts exports every version only with 'all'."""
    require_peer()
    server = MlflowServer(tmp_path_factory.mktemp("peer-src")).start()
    yield server
    server.stop()


@pytest.mark.peer
def test_peer_export_imported_by_us(peer_src: MlflowServer, mlflow_dst: MlflowServer,
                                    dst_client: TrackingClient, tmp_path: Path) -> None:
    seeded = seed_prompts(peer_src.uri, "peer")
    out = tmp_path / "peer-out"
    peer("export-prompts", peer_src.uri, "--output-dir", str(out), "--prompts", "all")
    outcome = import_prompts(dst_client, out)
    assert outcome.phase == "Succeeded", outcome.failed
    assert (outcome.counts.prompts, outcome.counts.prompt_versions) == (2, 13)
    for name in (seeded.text, seeded.chat):
        src, dst = prompt_view(peer_src.uri, name), prompt_view(mlflow_dst.uri, name)
        # The peer's file has no response format, model config, aliases or prompt-level metadata.
        lost = ("response_format", "model_config")
        assert [{k: v for k, v in d.items() if k not in lost} for d in dst["versions"]] == \
               [{k: v for k, v in s.items() if k not in lost} for s in src["versions"]]
        assert all(v["response_format"] is None and v["model_config"] is None for v in dst["versions"])
        assert dst["aliases"] == {}
    assert import_prompts(dst_client, out).counts.objects == 0


@pytest.mark.peer
def test_our_export_imported_by_peer(exported: Path, seeded_prompts: SeededPrompts, mlflow_src: MlflowServer,
                                     mlflow_dst: MlflowServer, tmp_path: Path, unique: str) -> None:
    only_chat = tmp_path / "chat"
    for version in (1, 2):
        src = exported / prompt_format.version_dir_name(seeded_prompts.chat, version)
        (only_chat / src.name).mkdir(parents=True)
        (only_chat / src.name / "prompt.json").write_text((src / "prompt.json").read_text())
    # Only a prompt of fewer than ten versions: the peer imports version directories in string
    # order (name_v1, name_v10, name_v11, name_v2, ...), so it would reorder eleven versions.
    copy = _rename(only_chat, tmp_path / "renamed", unique)
    peer("import-prompts", mlflow_dst.uri, "--input-dir", str(copy))
    src, dst = prompt_view(mlflow_src.uri, seeded_prompts.chat), prompt_view(mlflow_dst.uri,
                                                                            f"{seeded_prompts.chat}-{unique}")
    # The peer creates each version through register_prompt: template, tags and commit message
    # survive, in order; the response format, the aliases and the prompt's metadata do not.
    keep = ("version", "template", "is_text", "commit_message", "tags", "variables")
    assert [{k: v[k] for k in keep} for v in dst["versions"]] == [{k: v[k] for k in keep} for v in src["versions"]]
    assert dst["versions"][1]["response_format"] is None and src["versions"][1]["response_format"]
    assert dst["aliases"] == {}
