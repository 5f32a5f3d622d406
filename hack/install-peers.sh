#!/usr/bin/env bash
# Installs the peer tools, each in its own virtualenv under .peers/, for interop tests and benchmarks:
#   .peers/mlflow-export-import/  databricks-mlflow-export-import 1.2.1 (export-*/import-* commands)
#   .peers/kiroframe-importer/    kiroframe-importer 0.0.10
# Both pin old releases (mlflow 3.3.0, databricks-cli) that would drag a second MLflow into the
# resolver, so each is installed with --no-deps next to the MLflow our servers run plus exactly the
# modules it imports at run time. Idempotent: a stamp holding the requirement list skips the work
# unless the list changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
MLFLOW="mlflow==3.17.2"
PIP_QUIET=(-q --disable-pip-version-check)

# pip warns once per package about index locations that a machine's pip.conf names but lacks;
# those say nothing about this install.
quiet_pip() { grep -v "is ignored: it is neither a file nor a directory" || true; }

# install_peer NAME "NO-DEPS PACKAGE" "RUNTIME REQUIREMENTS..."
install_peer() {
  local name=$1 tool=$2 runtime=$3
  local dir=.peers/$name stamp=.peers/$name/.ferry-peer-installed
  local want="$tool | $runtime"
  if [[ -f $stamp && "$(cat "$stamp")" == "$want" && -x $dir/bin/python ]]; then
    return
  fi
  echo "install-peers: installing $name into $dir" >&2
  rm -rf "$dir"
  "$PYTHON" -m venv "$dir"
  # shellcheck disable=SC2086 - the requirement lists are deliberately word-split
  "$dir/bin/pip" install "${PIP_QUIET[@]}" $runtime 2> >(quiet_pip >&2)
  "$dir/bin/pip" install "${PIP_QUIET[@]}" --no-deps $tool 2> >(quiet_pip >&2)
  printf '%s' "$want" >"$stamp"
}

install_peer mlflow-export-import \
  "databricks-mlflow-export-import==1.2.1" \
  "$MLFLOW databricks-cli==0.18.0 tabulate==0.9.0 packaging pandas wheel"

install_peer kiroframe-importer \
  "kiroframe-importer==0.0.10" \
  "$MLFLOW tqdm retrying requests"
