"""Side-by-side benchmarks of ferry against mlflow-export-import and kiroframe-importer.

Measurements live here, never in timed tests: `python -m bench` (or `make bench`) starts its own
servers, seeds them with `devstack.workload`, runs every tool in its own virtualenv and writes
the results with the machine's facts under `bench/results/`.
"""
