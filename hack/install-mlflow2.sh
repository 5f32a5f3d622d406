#!/usr/bin/env bash
# Installs MLflow 2.22 (the last MLflow 2 release, the one many users migrate from) in its own
# virtualenv .peers/mlflow2/, so tests can run a real MLflow 2 tracking server as a source:
#   .peers/mlflow2/bin/python -m mlflow server ...   (devstack.mlflow_server.MlflowServer(python=...))
# SQLAlchemy is pinned to 2.0.36: later 2.0 releases break that MLflow's server. Idempotent: a
# stamp holding the requirement list skips the work unless the list changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
WANT="mlflow==2.22.* sqlalchemy==2.0.36"
DIR=.peers/mlflow2
STAMP=$DIR/.ferry-mlflow2-installed

if [[ -f $STAMP && "$(cat "$STAMP")" == "$WANT" && -x $DIR/bin/python ]]; then
  exit 0
fi
echo "install-mlflow2: installing $WANT into $DIR" >&2
rm -rf "$DIR"
"$PYTHON" -m venv "$DIR"
# pip warns once per package about index locations that a machine's pip.conf names but lacks.
# shellcheck disable=SC2086 - the requirement list is deliberately word-split
"$DIR/bin/pip" install -q --disable-pip-version-check $WANT \
  2> >(grep -v "is ignored: it is neither a file nor a directory" >&2 || true)
"$DIR/bin/python" -c 'import mlflow; assert mlflow.__version__.startswith("2.22."), mlflow.__version__'
printf '%s' "$WANT" >"$STAMP"
