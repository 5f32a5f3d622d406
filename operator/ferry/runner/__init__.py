"""What runs inside a Job: ``ferry job`` reads its JSON, runs an engine, reports back.

Kept free of kopf and of the controller: the Job's image runs only this, the engines and the
Kubernetes client it needs to patch its own resource's ``status.progress``.
"""
