"""Export and import of the scorers registered on an experiment (MLflow 3 ``mlflow.genai.scorers``).

mlflow-export-import 1.2.1 does not carry scorers, so the layout is ours, in its JSON envelope:
``<dir>/scorers.json`` holds ``mlflow.experiment`` (id and name) and ``mlflow.scorers``, one entry
per scorer name with every version (``scorer_version``, ``serialized_scorer``, ``creation_time``)
and its online scoring configs in that experiment (``sample_rate``, ``filter_string``). Inside an
experiment's export directory it sits beside ``experiment.json``.

Versions are registered again in order, so the destination's numbering follows the source's. An
import is idempotent without tags (scorers have none): a version whose serialized form the
destination scorer already has is not registered again, and the source's newest version is made
the destination's newest. A destination may refuse a scorer (custom code is disabled on servers
by default; a judge's gateway endpoint may be missing): that scorer is a failed line with the
server's reason.
"""

from __future__ import annotations

from pathlib import Path

from ferry.engine import registry_files
from ferry.errors import FerryError
from ferry.outcome import Counts, Outcome
from ferry.tracking.client import TrackingClient
from ferry.tracking.scorers import Scorers
from ferry.tracking.transport import EndpointMissing, JsonDict

SCORERS_FILE = "scorers.json"


def _outcome(scorers: int, versions: int, failed: list[str], path: str, note: str = "") -> Outcome:
    message = f"{scorers} scorers, {versions} scorer versions" + (f"; {len(failed)} failed" if failed else "")
    return Outcome.of(Counts(scorers=scorers), failed, message=message + (f" ({note})" if note else ""), path=path)


def export_scorers(client: TrackingClient, experiment: str, out_dir: str | Path) -> Outcome:
    """Write every scorer of `experiment` (a name or an id) with all its versions to ``scorers.json``."""
    out = Path(out_dir)
    exp = client.find_experiment(experiment)
    exp_id, api = str(exp["experiment_id"]), Scorers(client)
    try:
        latest = api.latest(exp_id)
    except EndpointMissing:
        return _outcome(0, 0, [], str(out), f"MLflow at {client.uri} has no scorers (MLflow 2)")
    entries, failed = [], []
    for scorer in sorted(latest, key=lambda s: str(s["scorer_name"])):
        name = str(scorer["scorer_name"])
        try:
            versions = api.versions(exp_id, name)
            configs = [c for c in api.online_configs([str(scorer["scorer_id"])]) if str(c.get("experiment_id")) == exp_id]
        except FerryError as err:
            failed.append(f"scorer '{name}' of experiment '{exp['name']}': {err.message}")
            continue
        entries.append({
            "name": name,
            "scorer_id": scorer.get("scorer_id"),
            "versions": [{k: v.get(k) for k in ("scorer_version", "serialized_scorer", "creation_time")}
                         for v in versions],
            "online_configs": [{"sample_rate": c.get("sample_rate"), "filter_string": c.get("filter_string")}
                               for c in configs],
        })
    doc = {"experiment": {"experiment_id": exp_id, "name": exp["name"]}, "scorers": entries}
    registry_files.write(out, SCORERS_FILE, doc, uri=client.uri, script="export_scorers.py")
    return _outcome(len(entries), sum(len(e["versions"]) for e in entries), failed, str(out))


def import_scorers(client: TrackingClient, in_dir: str | Path, *, experiment_name: str | None = None) -> Outcome:
    """Register the scorers of ``<in_dir>/scorers.json`` on `experiment_name` (default: the source's name).

    The experiment is created if missing, as importing an experiment would.
    """
    path = Path(in_dir)
    doc = registry_files.read(path / SCORERS_FILE, "an export of scorers")["mlflow"]
    entries = doc.get("scorers") or []
    name = experiment_name or str((doc.get("experiment") or {}).get("name") or "")
    if not entries:
        return _outcome(0, 0, [], str(path))
    exp_id = str(client.get_or_create_experiment(name)["experiment_id"])
    api = Scorers(client)
    done = registered = 0
    failed: list[str] = []
    for entry in entries:
        what = f"scorer '{entry.get('name')}' of experiment '{name}'"
        try:
            registered += _import_scorer(api, exp_id, entry)
            failed += [f"{what}: {reason}" for reason in _import_online_configs(api, exp_id, entry)]
            done += 1
        except EndpointMissing:
            failed.append(f"{what}: MLflow at {client.uri} has no scorers (MLflow 2)")
        except FerryError as err:
            failed.append(f"{what}: {err.message}")
    return _outcome(done, registered, failed, str(path))


def _import_scorer(api: Scorers, exp_id: str, entry: JsonDict) -> int:
    """Register the source versions the destination scorer lacks; returns how many were registered."""
    name = str(entry["name"])
    wanted = [str(v["serialized_scorer"]) for v in sorted(entry.get("versions") or [],
                                                           key=lambda v: int(v.get("scorer_version", 0)))]
    if not wanted:
        return 0
    have = [str(v.get("serialized_scorer")) for v in _versions_or_none(api, exp_id, name)]
    count = 0
    for serialized in wanted:
        if serialized not in have:
            api.register(exp_id, name, serialized)
            have.append(serialized)
            count += 1
    if have[-1] != wanted[-1]:  # the destination had a newer version of its own: the source's comes last
        api.register(exp_id, name, wanted[-1])
        count += 1
    return count


def _versions_or_none(api: Scorers, exp_id: str, name: str) -> list[JsonDict]:
    """The destination scorer's versions; none if it does not exist yet."""
    if not any(str(s.get("scorer_name")) == name for s in api.latest(exp_id)):
        return []
    return api.versions(exp_id, name)


def _import_online_configs(api: Scorers, exp_id: str, entry: JsonDict) -> list[str]:
    """Set the source's online scoring config if the destination's differs; reasons it could not be set."""
    configs = entry.get("online_configs") or []
    if not configs:
        return []
    name = str(entry["name"])
    scorer_ids = [str(s["scorer_id"]) for s in api.latest(exp_id) if str(s.get("scorer_name")) == name]
    current = [(c.get("sample_rate"), c.get("filter_string")) for c in api.online_configs(scorer_ids)
               if str(c.get("experiment_id")) == exp_id]
    reasons = []
    for config in configs:
        if (config.get("sample_rate"), config.get("filter_string")) in current:
            continue
        try:
            api.set_online_config(exp_id, name, float(config["sample_rate"]), config.get("filter_string"))
        except FerryError as err:
            reasons.append(f"online scoring config (sample rate {config.get('sample_rate')}) not set: {err.message}")
    return reasons
