"""The image installs what CI tests: the same pinned dependencies, and a Dockerfile hadolint accepts.

There is no container engine here, so the image is not built; instead these tests hold its install
steps to the pins the test environment is installed with (`hack/setup.sh`).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def run_instructions() -> list[str]:
    """The Dockerfile's RUN instructions, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    return [line.strip()[4:] for line in text.splitlines() if line.strip().startswith("RUN ")]


def test_hadolint_accepts_the_dockerfile() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    result = subprocess.run([str(hadolint), str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_and_ci_install_with_the_same_constraints() -> None:
    installs = [cmd for cmd in run_instructions() if re.search(r"\bpip (wheel|install)\b", cmd)]
    assert installs, "the Dockerfile installs nothing with pip"
    resolving = [cmd for cmd in installs if "--no-index" not in cmd]  # the step that picks versions
    assert resolving and all("--constraint constraints.txt" in cmd for cmd in resolving), resolving
    assert all("--find-links /wheels" in cmd for cmd in installs if "--no-index" in cmd), installs
    assert "COPY pyproject.toml README.md constraints.txt" in DOCKERFILE.read_text()
    setup = (ROOT / "hack" / "setup.sh").read_text()
    assert re.search(r"pip install .*-c constraints\.txt -e '\.\[test\]'", setup), "setup.sh ignores constraints.txt"


def test_constraints_pin_the_installed_runtime_dependencies() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "hack" / "constraints.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    pins = [line for line in (ROOT / "constraints.txt").read_text().splitlines() if not line.startswith("#")]
    assert all(re.fullmatch(r"[a-z0-9-]+==[^ ]+", line) for line in pins), pins
    names = {line.split("==")[0] for line in pins}
    assert {"kopf", "kubernetes", "mlflow-skinny", "pydantic", "requests"} <= names


def test_image_runs_the_operator_as_a_numeric_non_root_user() -> None:
    text = DOCKERFILE.read_text()
    final_stage = text.rsplit("\nFROM ", 1)[1]
    assert re.search(r"^USER [1-9][0-9]*:[1-9][0-9]*$", final_stage, re.M)
    assert 'ENTRYPOINT ["ferry"]' in final_stage and 'CMD ["operator"]' in final_stage
    assert "rm -rf /wheels" in final_stage and "PIP_NO_CACHE_DIR=1" in final_stage
    assert "org.opencontainers.image.version" in final_stage
