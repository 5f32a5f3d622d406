"""A pod's volumes as host directories, and the bind mounts each container gets.

Everything a volume holds is written below the pod's directory, except `persistentVolumeClaim`
(one host directory per claim under the state directory, shared by every pod that mounts it)
and `hostPath`. Secret, ConfigMap and token contents are written once, when the pod starts.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devstack.cluster.api import Api, Obj
from devstack.cluster.env import Lookup, field_value, resource_value

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


class VolumeNotReady(Exception):
    """A volume's source does not exist yet; the kubelet retries, the pod stays ContainerCreating."""


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool


@dataclass
class VolumeContext:
    api: Api
    pod: Obj
    pod_dir: Path
    claim_dir: Callable[[str, str], Path]
    lookup: Lookup
    node_allocatable: dict[str, str]

    @property
    def namespace(self) -> str:
        return str(self.pod["metadata"]["namespace"])

    @property
    def fs_group(self) -> int | None:
        return self.pod["spec"].get("securityContext", {}).get("fsGroup")


def prepare_volumes(ctx: VolumeContext) -> dict[str, Path]:
    """Materialize every volume of the pod; the result maps volume name to host path."""
    paths: dict[str, Path] = {}
    for volume in ctx.pod["spec"].get("volumes", []):
        paths[volume["name"]] = _prepare(ctx, volume)
    return paths


def _prepare(ctx: VolumeContext, volume: Obj) -> Path:
    name = volume["name"]
    if "persistentVolumeClaim" in volume:
        claim = volume["persistentVolumeClaim"]["claimName"]
        if ctx.api.get(f"/api/v1/namespaces/{ctx.namespace}/persistentvolumeclaims/{claim}") is None:
            raise VolumeNotReady(f'persistentvolumeclaim "{claim}" not found')
        path = ctx.claim_dir(ctx.namespace, claim)
        _make_dir(path, 0o777)
        return path
    if "hostPath" in volume:
        path = Path(volume["hostPath"]["path"])
        if volume["hostPath"].get("type") in ("DirectoryOrCreate",) and not path.exists():
            path.mkdir(parents=True, exist_ok=True)
        return path
    path = ctx.pod_dir / "volumes" / name
    if "emptyDir" in volume:
        _make_dir(path, 0o777)
        return path
    files: dict[str, tuple[bytes, int]] = {}
    if "secret" in volume:
        source = volume["secret"]
        _add_keys(ctx, files, "secrets", source.get("secretName", ""), source, source.get("defaultMode", 0o644))
    elif "configMap" in volume:
        source = volume["configMap"]
        _add_keys(ctx, files, "configmaps", source.get("name", ""), source, source.get("defaultMode", 0o644))
    elif "downwardAPI" in volume:
        _add_downward(ctx, files, volume["downwardAPI"].get("items", []), volume["downwardAPI"].get("defaultMode", 0o644))
    elif "projected" in volume:
        mode = volume["projected"].get("defaultMode", 0o644)
        for source in volume["projected"].get("sources", []):
            _add_projected(ctx, files, source, mode)
    else:
        raise VolumeNotReady(f"volume {name!r}: this kind of volume is not supported by the local kubelet")
    _make_dir(path, 0o755)
    for relative, (content, mode) in files.items():
        target = path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        target.chmod(mode)
        if ctx.fs_group is not None:
            os.chown(target, -1, ctx.fs_group)
    return path


def _make_dir(path: Path, mode: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)


def _add_keys(ctx: VolumeContext, files: dict[str, tuple[bytes, int]], kind: str, name: str, source: Obj,
              default_mode: int) -> None:
    obj = ctx.lookup(kind, name)
    label = "secret" if kind == "secrets" else "configmap"
    if obj is None:
        if source.get("optional"):
            return
        raise VolumeNotReady(f'{label} "{name}" not found')
    data: dict[str, bytes] = {}
    if kind == "secrets":
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    else:
        data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
        data |= {k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()}
    items = source.get("items")
    if not items:
        files.update({key: (value, default_mode) for key, value in data.items()})
        return
    for item in items:
        if item["key"] not in data:
            if source.get("optional"):
                continue
            raise VolumeNotReady(f"couldn't find key {item['key']} in {label} {ctx.namespace}/{name}")
        files[item["path"]] = (data[item["key"]], item.get("mode", default_mode))


def _add_downward(ctx: VolumeContext, files: dict[str, tuple[bytes, int]], items: list[Obj], default_mode: int) -> None:
    for item in items:
        if "fieldRef" in item:
            value = field_value(ctx.pod, item["fieldRef"]["fieldPath"])
        else:
            ref = item["resourceFieldRef"]
            value = resource_value(ctx.pod, ref.get("containerName", ""), ref, ctx.node_allocatable)
        files[item["path"]] = (value.encode(), item.get("mode", default_mode))


def _add_projected(ctx: VolumeContext, files: dict[str, tuple[bytes, int]], source: Obj, mode: int) -> None:
    if "secret" in source:
        _add_keys(ctx, files, "secrets", source["secret"].get("name", ""), source["secret"], mode)
    elif "configMap" in source:
        _add_keys(ctx, files, "configmaps", source["configMap"].get("name", ""), source["configMap"], mode)
    elif "downwardAPI" in source:
        _add_downward(ctx, files, source["downwardAPI"].get("items", []), mode)
    elif "serviceAccountToken" in source:
        files[source["serviceAccountToken"]["path"]] = (_request_token(ctx, source["serviceAccountToken"]).encode(), mode)


def _request_token(ctx: VolumeContext, source: Obj) -> str:
    """A bound token for the pod's ServiceAccount from the TokenRequest API (not refreshed later)."""
    meta = ctx.pod["metadata"]
    account = ctx.pod["spec"].get("serviceAccountName") or "default"
    spec: Obj = {"expirationSeconds": max(int(source.get("expirationSeconds", 3600)), 600),
                 "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]}}
    if source.get("audience"):
        spec["audiences"] = [source["audience"]]
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
    answer = ctx.api.post(f"/api/v1/namespaces/{ctx.namespace}/serviceaccounts/{account}/token", body)
    return str(answer["status"]["token"])


def container_mounts(container: Obj, volume_paths: dict[str, Path]) -> list[Mount]:
    """The bind mounts for one container, with `subPath` resolved inside the volume."""
    mounts = []
    for mount in container.get("volumeMounts", []):
        source = volume_paths[mount["name"]]
        if mount.get("subPath"):
            source = source / mount["subPath"]
            if not source.exists():
                source.mkdir(parents=True, exist_ok=True)
                source.chmod(0o777)
        mounts.append(Mount(str(source), mount["mountPath"], bool(mount.get("readOnly"))))
    return mounts
