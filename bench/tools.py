"""The tools compared, each in its own virtualenv, and how each is told to do the same work.

ferry's commands take the peers' names and flags, so one argv serves both sides; only the
directory the console scripts live in differs. `hack/install-peers.sh` makes the peers' venvs.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Tool:
    name: str
    bin_dir: Path

    def command(self, script: str) -> str:
        return str(self.bin_dir / script)

    @property
    def installed(self) -> bool:
        return self.bin_dir.is_dir()


FERRY = Tool("ferry", Path(sys.executable).parent)
MLFLOW_EXPORT_IMPORT = Tool("mlflow-export-import", REPO / ".peers" / "mlflow-export-import" / "bin")
KIROFRAME_IMPORTER = Tool("kiroframe-importer", REPO / ".peers" / "kiroframe-importer" / "bin")
LOWER_BOUND = Tool("raw REST lower bound", Path(sys.executable).parent)


def export_experiment(tool: Tool, experiment: str, out: Path) -> list[str]:
    return [tool.command("export-experiment"), "--experiment", experiment, "--output-dir", str(out)]


def import_experiment(tool: Tool, experiment: str, src: Path) -> list[str]:
    return [tool.command("import-experiment"), "--experiment-name", experiment, "--input-dir", str(src)]


def export_model(tool: Tool, model: str, out: Path) -> list[str]:
    return [tool.command("export-model"), "--model", model, "--output-dir", str(out)]


def import_model(tool: Tool, model: str, experiment: str, src: Path) -> list[str]:
    return [tool.command("import-model"), "--model", model, "--experiment-name", experiment,
            "--input-dir", str(src)]


def kiroframe(tool: Tool, tracking_uri: str, base_dir: Path, kiroframe_url: str, token: str, *,
              push: bool) -> list[str]:
    # The peer insists on a Kiroframe URL and token even when it is told not to push.
    return [tool.command("kiroframe-importer"), "--tracking-url", tracking_uri, "--base-dir", str(base_dir),
            "--kiroframe-url", kiroframe_url, "--profiling-token", token, "--export-models",
            "--import-to-kiroframe" if push else "--no-import-to-kiroframe"]


def lower_bound(tracking_uri: str, experiment: str, artifacts_to: Path | None = None) -> list[str]:
    # By path: the tools run in their output directory, where the `bench` package is not importable.
    argv = [sys.executable, str(REPO / "bench" / "lower_bound.py"), "--uri", tracking_uri, "--experiment", experiment]
    return argv + (["--artifacts-to", str(artifacts_to)] if artifacts_to else [])


def export_traces(tool: Tool, experiment_id: str, out: Path) -> list[str]:
    return [tool.command("export-traces"), "--experiment-ids", experiment_id, "--output-dir", str(out)]


def import_traces(tool: Tool, src: Path, experiment: str | None = None) -> list[str]:
    # The peer's import-traces has no --experiment-name: each trace goes to its source experiment's name.
    return [tool.command("import-traces"), "--input-dir", str(src)] + (
        ["--experiment-name", experiment] if experiment else [])


def trace_lower_bound(tracking_uri: str, experiment: str, dst_uri: str, dst_experiment: str) -> list[str]:
    return [sys.executable, str(REPO / "bench" / "trace_lower_bound.py"), "--uri", tracking_uri,
            "--experiment", experiment, "--dst-uri", dst_uri, "--dst-experiment", dst_experiment]


def mirror(tool: Tool, src_uri: str, dst_uri: str, experiment: str, state_file: Path) -> list[str]:
    # Only the experiment the export + import beside it copies; the source has no models or prompts.
    return [tool.command("ferry"), "mirror", "--src-mlflow-uri", src_uri, "--dst-mlflow-uri", dst_uri,
            "--experiments", experiment, "--include-artifacts", "True", "--state-file", str(state_file), "--once"]
