#!/usr/bin/env bash
# Installs everything the tests and the demo need on a fresh machine, idempotently:
#   - Debian packages (etcd, Go and openssl for the control plane; GNU time for the benchmarks),
#   - the Python virtualenv .venv with this package and its test extra, pinned by constraints.txt
#     (the same pins the image is built with), and the Helm SDK,
#   - the control plane (kube-apiserver, kube-controller-manager; cached after the first build),
#   - the peer tools in their own virtualenvs (for interop tests and benchmarks), and MLflow 2.22
#     in .peers/mlflow2 (a source server to migrate from).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: GNU time (the benchmarks and their tests read a tool's peak RSS from it),
# Prometheus (the metrics tests scrape the operator with it and check the chart's alert rules) and
# PostgreSQL (the production-shaped MLflow servers' backend, devstack/postgres.py).
debs=()
[[ -x /usr/bin/time ]] || debs+=(time)
command -v prometheus >/dev/null && command -v promtool >/dev/null || debs+=(prometheus)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || debs+=(postgresql)
# Tests start these servers themselves, on 127.0.0.1; the packages' recommended extras (Prometheus'
# node exporter) are not needed.
if (( ${#debs[@]} )); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${debs[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.ferry-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp || constraints.txt -nt $stamp ]]; then
  .venv/bin/pip install -q --disable-pip-version-check -U pip
  .venv/bin/pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
  # The Helm 4 SDK declares Python 3.12 but works on 3.11; it cannot sit in the test extra.
  .venv/bin/pip install -q --disable-pip-version-check --ignore-requires-python 'helm-sdkpy==0.1.32'
  touch "$stamp"
fi

bash hack/build-control-plane.sh
if [[ -f hack/install-peers.sh ]]; then bash hack/install-peers.sh; fi
bash hack/install-mlflow2.sh
