#!/usr/bin/env bash
# Installs everything the tests and the demo need on a fresh machine, idempotently:
#   - Debian packages (etcd, Go and openssl for the control plane),
#   - the Python virtualenv .venv with this package and its test extra,
#   - the control plane (kube-apiserver, kube-controller-manager; cached after the first build),
#   - the peer tools in their own virtualenvs (for interop tests and benchmarks).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.ferry-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  .venv/bin/pip install -q --disable-pip-version-check -U pip
  .venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
  touch "$stamp"
fi

bash hack/build-control-plane.sh
if [[ -f hack/install-peers.sh ]]; then bash hack/install-peers.sh; fi
