# The front door: `make demo` runs the local demo, `make test` runs every test.
.PHONY: setup test lint demo demo-down demo-status bench bench-quick crds

setup:
	bash hack/setup.sh

# Parallel workers: most of the cluster tests' time is waiting on Jobs, which overlaps with the
# CPU-bound engine tests; tests/conftest.py keeps the cluster tests together on one worker.
TEST_WORKERS ?= 3

test: setup
	.venv/bin/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

lint: setup
	.venv/bin/ruff check .
	.venv/bin/lint-imports --no-cache

# Side-by-side benchmarks against the peers (bench/README.md); QUICK=1 for the few-minute run.
bench: setup
	.venv/bin/python -m bench $(if $(QUICK),--quick)

bench-quick: setup
	.venv/bin/python -m bench --quick

# The local demo: control plane, two MLflow servers, the Kiroframe stand-in, the chart, examples/.
demo: setup
	.venv/bin/python -m devstack.demo up

demo-status:
	.venv/bin/python -m devstack.demo status

demo-down:
	.venv/bin/python -m devstack.demo down
