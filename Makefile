# The front door: `make demo` runs the local demo, `make test` runs every test.
.PHONY: setup test lint demo demo-down bench crds

setup:
	bash hack/setup.sh

test: setup
	.venv/bin/python -m pytest

lint: setup
	.venv/bin/ruff check .
