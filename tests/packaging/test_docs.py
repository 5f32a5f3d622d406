"""The front door stays true: the reference is generated from ferry.api, every resource the README
shows is a file in examples/, and every example is a valid resource — for the operator's models and
for the real API server."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from devstack.cluster.pytest_plugin import wait_for
from ferry.api import API_VERSION, BY_KIND

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def example_docs() -> list[tuple[str, dict]]:
    return [(path.name, doc) for path in EXAMPLES for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_reference_is_generated_from_the_api() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "hack" / "reference.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    reference = (ROOT / "docs" / "reference.md").read_text()
    for kind in BY_KIND.values():
        assert f"## {kind.kind}" in reference
        for field in kind.spec.model_json_schema(by_alias=True)["properties"]:
            assert f"| `{field}`" in reference, f"{kind.kind}.spec.{field} missing from docs/reference.md"


def test_readme_shows_only_files_of_examples() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S)
    shown = [yaml.safe_load(block) for block in blocks]
    resources = [doc for doc in shown if isinstance(doc, dict) and doc.get("apiVersion") == API_VERSION]
    assert len(resources) >= 3
    files = {path.name: path.read_text() for path in EXAMPLES}
    for block, doc in zip(blocks, shown, strict=True):
        if doc in resources:
            assert any(block == text for text in files.values()), f"README shows YAML that is no file of examples/:\n{block}"
    text = README.read_text()
    assert "make demo" in text and "make test" in text and "make demo-down" in text
    assert all(f"examples/{name}" in text for name in files), "README does not link every example"


@pytest.mark.parametrize(("name", "doc"), example_docs(), ids=lambda v: v if isinstance(v, str) else "")
def test_example_is_a_valid_resource(name: str, doc: dict) -> None:
    assert doc["apiVersion"] == API_VERSION, name
    BY_KIND[doc["kind"]].spec.model_validate(doc["spec"])


def established(ext: client.ApiextensionsV1Api, name: str) -> bool:
    conditions = ext.read_custom_resource_definition(name).status.conditions or []
    return any(c.type == "Established" and c.status == "True" for c in conditions)


@pytest.mark.cluster
def test_api_server_accepts_every_example(k8s_api, k8s_namespace: str) -> None:
    """Server-side dry run: the generated CRD schemas accept what the README tells users to apply."""
    ext = client.ApiextensionsV1Api(k8s_api)
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        try:
            ext.create_custom_resource_definition(crd)
        except client.ApiException as err:
            assert err.status == 409, err
        wait_for(lambda name=crd["metadata"]["name"]: established(ext, name), 30, f"CRD {path.name} established")
    custom = client.CustomObjectsApi(k8s_api)
    group, version = API_VERSION.split("/")
    for name, doc in example_docs():
        try:
            created = custom.create_namespaced_custom_object(group, version, k8s_namespace,
                                                             BY_KIND[doc["kind"]].plural, doc, dry_run="All")
        except client.ApiException as err:
            raise AssertionError(f"{name}: {err.body}") from None
        assert created["spec"]["source"] == doc["spec"]["source"], name
