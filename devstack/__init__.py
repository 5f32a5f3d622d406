"""Real parts for tests, the demo and the benchmarks, started on 127.0.0.1.

Nothing here stands in for a server we can run: `mlflow_server` starts real `mlflow server`
processes, `cluster` a real etcd + kube-apiserver + kube-controller-manager with a local kubelet,
and `kiroframe` an HTTP server speaking Kiroframe's import protocol (Kiroframe itself is a SaaS).
Every process is recorded by pid and stopped by it.
"""
