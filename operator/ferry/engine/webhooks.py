"""Export and import of the model registry's webhooks (MLflow >= 3.3).

mlflow-export-import 1.2.1 does not carry webhooks, so the layout is ours, in its JSON envelope:
``<export>/webhooks/webhooks.json`` holds ``mlflow.webhooks``, one entry per webhook with its
``name``, ``url``, ``events`` (``{"entity", "action"}``), ``description`` and ``status``, plus the
source's id and timestamps for reference.

**Secrets.** MLflow never returns a webhook's signing secret, and nothing it returns tells whether
a webhook has one (the answers of create, get, list and update all lack it; only a delivery shows
it, by its signature header, and a test delivery would post to the user's real endpoint). So an
import cannot carry secrets, and cannot know which webhooks need one: the user names them in a
secrets file (`load_secrets`: webhook name -> secret). A webhook the file gives a secret is
created with it; one the file maps to an empty value is created without one, deliberately; every
other webhook is created without a secret and listed as ``skipped-secret`` with the reason, so
the outcome is PartiallyFailed and the user knows to set it.

**Idempotency.** A destination webhook with the same name, URL and events is the imported one: it
is not created again (a rerun creates nothing). If the file gives it a secret, the secret is set
on it, so adding a missing secret to the file and importing again repairs what was reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from ferry.engine.files import read_export_file, write_export_file
from ferry.errors import FerryError, InputError
from ferry.outcome import Counts, Outcome
from ferry.tracking.client import TrackingClient
from ferry.tracking.transport import EndpointMissing, JsonDict
from ferry.tracking.webhooks import Webhooks

WEBHOOKS_DIR = "webhooks"  # beside experiments/, models/, prompts/ of an export
WEBHOOKS_FILE = "webhooks.json"
SKIPPED_SECRET = "skipped-secret"
FIELDS = ("webhook_id", "name", "url", "events", "description", "status", "creation_timestamp",
          "last_updated_timestamp")
NO_SECRET_REASON = (f"{SKIPPED_SECRET}: imported without a signing secret: MLflow never returns a webhook's "
                    "secret; give it in the webhook secrets file (an empty value if the webhook has none)")

Secrets = Mapping[str, str | None]


def _events_key(events: Sequence[JsonDict]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(e.get("entity")), str(e.get("action"))) for e in events))


def identity(webhook: Mapping[str, object]) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """What makes a destination webhook the imported copy of a source one: name, URL and events."""
    events = webhook.get("events") or []
    return str(webhook.get("name")), str(webhook.get("url")), _events_key(events if isinstance(events, list) else [])


def holds_webhooks(in_dir: Path) -> bool:
    """`in_dir` (an export's root) holds an export of webhooks."""
    return (in_dir / WEBHOOKS_DIR / WEBHOOKS_FILE).is_file()


# -- export ----------------------------------------------------------------------------------------


def export_webhooks(client: TrackingClient, out_dir: str | Path, names: str | Sequence[str] = "all") -> Outcome:
    """Write the server's webhooks (``"all"`` or those named) to ``<out_dir>/webhooks.json``.

    `out_dir` is the webhooks directory itself (``<export>/webhooks``, `WEBHOOKS_DIR`). A server
    without webhooks (MLflow 2, MLflow < 3.3: HTTP 404) has none: nothing is written, nothing fails.
    """
    out = Path(out_dir)
    try:
        found = Webhooks(client).list()
    except EndpointMissing:
        return _outcome(0, [], path=str(out), note=f"MLflow at {client.uri} has no webhooks (before MLflow 3.3)")
    wanted = None if isinstance(names, str) and names in ("all", "*") else list(
        [names] if isinstance(names, str) else names)
    failed = []
    if wanted is not None:
        have = {str(w.get("name")) for w in found}
        failed = [f"webhook '{n}': not found in MLflow at {client.uri}" for n in wanted if n not in have]
        found = [w for w in found if str(w.get("name")) in wanted]
    entries = [{k: w.get(k) for k in FIELDS} for w in sorted(found, key=lambda w: (str(w.get("name")),
                                                                                   str(w.get("webhook_id"))))]
    write_export_file(out, WEBHOOKS_FILE, script="export_webhooks.py", tracking_uri=client.uri,
                      mlflow={"webhooks": entries}, info={"num_webhooks": len(entries)})
    return _outcome(len(entries), failed, path=str(out))


# -- import ----------------------------------------------------------------------------------------


def load_secrets(path: str | Path) -> dict[str, str | None]:
    """Webhook name -> secret from `path`: a JSON or YAML mapping, or a directory of one file per
    webhook (a Kubernetes Secret mounted as a volume: each key a file named after it).

    Raises `InputError` (one line) for a missing path or a file that is not such a mapping.
    """
    source = Path(path)
    if source.is_dir():
        return {p.name: p.read_text(encoding="utf-8").rstrip("\r\n") for p in sorted(source.iterdir())
                if not p.name.startswith(".") and p.is_file()}  # a Secret volume's ..data links are hidden
    if not source.is_file():
        raise InputError(f"webhook secrets file {source} does not exist")
    try:
        doc = yaml.safe_load(source.read_text(encoding="utf-8"))  # JSON is YAML
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise InputError(f"webhook secrets file {source} is not JSON or YAML: {' '.join(str(err).split())}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict) or not all(isinstance(k, str) and (v is None or isinstance(v, str))
                                            for k, v in doc.items()):
        raise InputError(f"webhook secrets file {source} is not a mapping of webhook names to secrets (strings)")
    return dict(doc)


def import_webhooks(client: TrackingClient, in_dir: str | Path, *, secrets: Secrets | None = None) -> Outcome:
    """Create the webhooks of ``<in_dir>/webhooks.json`` that the destination lacks (`in_dir` is
    the webhooks directory), each with its secret from `secrets` (see the module's docstring)."""
    path = Path(in_dir)
    doc = read_export_file(path / WEBHOOKS_FILE, "an export of webhooks")
    entries = [e for e in (doc.get("mlflow") or {}).get("webhooks") or [] if isinstance(e, dict)]
    if not entries:
        return _outcome(0, [], path=str(path))
    secrets = secrets or {}
    api = Webhooks(client)
    try:
        existing = {identity(w): w for w in api.list()}
    except EndpointMissing:
        reason = f"MLflow at {client.uri} has no webhooks (before MLflow 3.3)"
        return _outcome(0, [f"webhook '{e.get('name')}': {reason}" for e in entries], path=str(path))
    created = kept = 0
    failed: list[str] = []
    for entry in entries:
        what = f"webhook '{entry.get('name')}' ({entry.get('url')})"
        secret = secrets.get(str(entry.get("name")))
        try:
            have = existing.get(identity(entry))
            if have is None:
                existing[identity(entry)] = api.create(
                    str(entry["name"]), str(entry["url"]), list(entry.get("events") or []),
                    description=entry.get("description"), status=entry.get("status"), secret=secret or None)
                created += 1
            else:
                if secret:
                    api.set_secret(str(have["webhook_id"]), secret)
                kept += 1
        except (FerryError, KeyError) as err:
            failed.append(f"{what}: {err.message if isinstance(err, FerryError) else f'no {err} in the export'}")
            continue
        if str(entry.get("name")) not in secrets:
            failed.append(f"{what}: {NO_SECRET_REASON}")
    return _outcome(created + kept, failed, path=str(path), note=f"{created} created, {kept} already there")


def _outcome(webhooks: int, failed: list[str], *, path: str, note: str = "") -> Outcome:
    message = f"{webhooks} webhooks" + (f" ({note})" if note else "") + (f"; {len(failed)} failed" if failed else "")
    return Outcome.of(Counts(webhooks=webhooks), failed, message=message, path=path)

