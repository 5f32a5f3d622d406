"""A standby tracking server kept in step with a primary: one incremental sync, server to server.

A sync reads only what can have changed since the previous one began (its `since`, the
watermark): runs that started or ended since then and runs still running, registered models
and prompts updated since then, traces and logged models created since then. Experiments are
listed whole (one request per thousand). Each object is brought in step with its copy on the
destination, which is found by the ``ferry.source.*`` tags every copy carries, so a sync killed
half-way is finished by the next one with nothing doubled.

MLflow keeps no time for some edits (a tag set on a finished run, a metric step backfilled
below the latest one, an assessment added to an old trace). Every `MirrorOptions.full_compare_every`
a sync compares every mirrored run with its copy instead. The watermark moves only when a sync
carried everything it found, so whatever failed is tried again by the next sync.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from ferry.engine import mirror_genai, mirror_registry, runs
from ferry.engine.experiments_bulk import rename
from ferry.engine.mirror_report import ExperimentPair, SyncReport
from ferry.engine.mirror_runs import RunSync, bring_in_step, copy_new
from ferry.errors import FerryError
from ferry.options import ALL, MirrorObjects, MirrorOptions, Renames
from ferry.outcome import Outcome, Phase
from ferry.progress import ProgressSink, Tracker
from ferry.tracking import JsonDict, TrackingClient, tags_of

# Runs carry the start and end times their client sent, by its clock; a window reaching back this
# far before the previous sync began absorbs clients whose clocks run behind. Rereading the runs
# of that margin costs reads, never writes: a run in step is left alone.
CLOCK_MARGIN_MS = 5 * 60 * 1000
T = TypeVar("T")
EXPERIMENT_IDS_PER_SEARCH = 100
# Above this many changed runs in one experiment, one paged search of the copies beats a search per run.
INDEX_ABOVE = 20
# Runs of one experiment handled together: their copies looked up and their histories read in bulk.
SLICE = 500
_DURATION = re.compile(r"([0-9]+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def mirror(src: TrackingClient, dst: TrackingClient, objects: MirrorObjects | None = None,
           options: MirrorOptions | None = None, renames: Renames | None = None, *, since: int | None = None,
           last_full_compare: int | None = None, workers: int = 4, on_progress: ProgressSink | None = None,
           clock: Callable[[], float] = time.time, scratch: Path | None = None) -> Outcome:
    """One sync of `objects` from `src` to `dst`: what changed since `since` (ms), or everything.

    Returns the sync's outcome with `watermark` (the `since` of the next sync: this sync's start
    when everything it found was carried, else `since` unchanged), `lag_seconds` and, when this
    sync compared everything, `full_compare_time`.
    """
    objects, options, renames = objects or MirrorObjects(), options or MirrorOptions(), renames or Renames()
    started = int(clock() * 1000)
    try:
        return _sync(src, dst, objects, options, renames, since, last_full_compare, workers, on_progress, clock,
                     scratch, started)
    except FerryError as err:  # a server down, a refused login: nothing after `since` is known to be copied
        outcome = Outcome(phase=Phase.FAILED, message=err.message, failed=[err.message])
        outcome.watermark, outcome.lag_seconds = since, _lag(since, int(clock() * 1000))
        return outcome


def _sync(src: TrackingClient, dst: TrackingClient, objects: MirrorObjects, options: MirrorOptions,
          renames: Renames, since: int | None, last_full_compare: int | None, workers: int,
          on_progress: ProgressSink | None, clock: Callable[[], float], scratch: Path | None,
          started: int) -> Outcome:
    full = since is None or full_compare_due(options.full_compare_every, last_full_compare, started)
    window = None if full else since - CLOCK_MARGIN_MS  # type: ignore[operator]
    tracker, report = Tracker(on_progress), SyncReport()

    pairs = sync_experiments(src, dst, objects.experiments, renames.experiments, options.delete_missing, report)
    copies = sync_runs(src, dst, pairs, window, options, report, tracker, workers, scratch)
    if options.delete_missing:
        delete_runs_deleted_at_source(src, dst, pairs, full, report)
    if options.include_logged_models or options.include_traces:  # before the registry: versions point at models
        mirror_genai.sync_experiment_objects(src, dst, pairs, window, options, report, copies, scratch)
    mirror_registry.sync_models(src, dst, objects.models, renames.models, window, options.delete_missing, report,
                                mirror_registry.RunCopies(src, dst, copies, renames.experiments, scratch))
    mirror_genai.sync_prompts(src, dst, objects.prompts, window, report, scratch)

    ended = int(clock() * 1000)
    in_step = not report.failed
    lag = pending_lag(src, pairs, started, ended) if in_step else _lag(since, ended)
    message = f"{'full comparison' if full else 'sync'}: {report.counts.sentence()} changed, {report.unchanged} " \
              f"runs in step" + (f"; {len(report.failed)} failed" if report.failed else "")
    outcome = Outcome.of(report.counts, report.failed, message=message, done=report.counts.objects + 1)
    outcome.watermark = started if in_step else since
    outcome.lag_seconds = lag
    outcome.full_compare_time = started if full and in_step else None
    return outcome


def full_compare_due(every: str, last: int | None, now_ms: int) -> bool:
    """Whether this sync compares everything: `every` ('24h', '30m', '0': never) has passed since `last`."""
    seconds = duration_seconds(every)
    if seconds == 0:
        return False
    return last is None or now_ms - last >= seconds * 1000


def duration_seconds(text: str) -> int:
    """'1h30m' → 5400; '0' → 0."""
    return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION.findall(text))


# -- experiments -----------------------------------------------------------------------------------


def sync_experiments(src: TrackingClient, dst: TrackingClient, names: Sequence[str], renames: dict[str, str],
                     delete_missing: bool, report: SyncReport) -> list[ExperimentPair]:
    """Each selected source experiment paired with its destination experiment (created, tagged, restored).

    Both servers' experiments are listed whole: two paged requests however many runs there are.
    """
    everything = any(n in ALL for n in names)
    wanted = set(names)
    dst_by_name = {e["name"]: e for e in dst.search_experiments(view_type="ALL")}
    pairs: list[ExperimentPair] = []
    for exp in src.search_experiments(view_type="ALL"):
        if not (everything or exp["name"] in wanted or str(exp["experiment_id"]) in wanted):
            continue
        name = rename(exp["name"], renames)
        copy = dst_by_name.get(name)
        try:
            if exp.get("lifecycle_stage") == "deleted":
                if delete_missing and copy is not None and copy.get("lifecycle_stage") != "deleted":
                    dst.call("POST", "experiments/delete", json={"experiment_id": copy["experiment_id"]})
                    report.counts.experiments += 1
                continue
            pair, changed = _experiment_in_step(dst, exp, name, copy)
        except FerryError as err:
            report.failed.append(f"experiment '{exp['name']}': {err.message}")
            continue
        report.counts.experiments += int(changed)
        pairs.append(pair)
    return pairs


def _experiment_in_step(dst: TrackingClient, exp: JsonDict, name: str,
                        copy: JsonDict | None) -> tuple[ExperimentPair, bool]:
    tags = tags_of(exp)
    if copy is None:
        return ExperimentPair(exp, dst.create_experiment(name, tags=tags), name), True
    changed = False
    if copy.get("lifecycle_stage") == "deleted":
        dst.call("POST", "experiments/restore", json={"experiment_id": copy["experiment_id"]})
        changed = True
    have = tags_of(copy)
    for key, value in tags.items():
        if have.get(key) != value:
            dst.set_experiment_tag(copy["experiment_id"], key, value)
            changed = True
    return ExperimentPair(exp, str(copy["experiment_id"]), name), changed


# -- runs ------------------------------------------------------------------------------------------


def changed_runs(src: TrackingClient, experiment_ids: Sequence[str], window: int | None) -> Iterator[JsonDict]:
    """The active runs that can have changed since `window` (ms): started or ended since, or running.

    MLflow's search has no OR: three searches, each as long as what it finds. `window` None: every run.
    """
    for chunk in _chunks(experiment_ids, EXPERIMENT_IDS_PER_SEARCH):
        if window is None:
            yield from src.search_runs(chunk)
            continue
        seen: set[str] = set()
        for query in (f"attributes.start_time >= {window}", f"attributes.end_time >= {window}",
                      "attributes.status = 'RUNNING'"):
            for run in src.search_runs(chunk, filter=query):
                if run["info"]["run_id"] not in seen:
                    seen.add(run["info"]["run_id"])
                    yield run


def sync_runs(src: TrackingClient, dst: TrackingClient, pairs: Sequence[ExperimentPair], window: int | None,
              options: MirrorOptions, report: SyncReport, tracker: Tracker, workers: int,
              scratch: Path | None) -> dict[str, str]:
    """Bring every run that can have changed in step; returns source run id → copy id of those runs."""
    by_src = {p.src_id: p for p in pairs}
    todo: dict[str, list[JsonDict]] = {}
    for run in changed_runs(src, list(by_src), window):
        todo.setdefault(str(run["info"]["experiment_id"]), []).append(run)
    tracker.add_total(sum(len(v) for v in todo.values()))
    done: list[RunSync] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for exp_id, found in ((e, s) for e, runs_ in todo.items() for s in _chunks(runs_, SLICE)):
            pair = by_src[exp_id]
            copies = _copies(dst, pair.dst_id, src.uri, found, full=window is None)
            histories = _bulk_histories(src, [r for r in found if r["info"]["run_id"] not in copies])

            def one(run: JsonDict, pair: ExperimentPair = pair, copies: dict[str, JsonDict] = copies,
                    histories: dict[str, dict[str, list[JsonDict]]] = histories) -> RunSync:
                run_id = run["info"]["run_id"]
                copy = copies.get(run_id)
                if copy is None:
                    return copy_new(src, dst, run, pair.dst_id, include_artifacts=options.include_artifacts,
                                    scratch=scratch, histories=histories.get(run_id))
                return bring_in_step(src, dst, run, copy, include_artifacts=options.include_artifacts)

            for run, result in zip(found, pool.map(_guarded(one), found), strict=True):
                if isinstance(result, FerryError):
                    report.failed.append(f"run {run['info']['run_id']} of experiment '{pair.src['name']}': "
                                         f"{result.message}")
                    tracker.fail()
                    continue
                done.append(result)
                tracker.advance()
    copies_of = {r.src_run_id: r.dst_run_id for r in done}
    _link_parents(dst, pairs, done, copies_of, src.uri)
    for result in done:
        report.counts.runs += int(result.wrote)
        report.counts.bytes += result.nbytes
        report.unchanged += int(not result.wrote)
    return copies_of


def _bulk_histories(src: TrackingClient, new: Sequence[JsonDict]) -> dict[str, dict[str, list[JsonDict]]]:
    """Every metric history of the runs to copy whole, one request per metric key per hundred runs."""
    if len(new) < 2:
        return {}
    by_key: dict[str, list[str]] = {}
    for run in new:
        for metric in (run.get("data") or {}).get("metrics", []):
            by_key.setdefault(metric["key"], []).append(run["info"]["run_id"])
    histories: dict[str, dict[str, list[JsonDict]]] = {run["info"]["run_id"]: {} for run in new}
    for key, run_ids in by_key.items():
        for run_id, points in src.get_metric_histories(run_ids, key).items():
            histories[run_id][key] = points
    return histories


def _copies(dst: TrackingClient, dst_experiment_id: str, src_uri: str, found: Sequence[JsonDict], *,
            full: bool) -> dict[str, JsonDict]:
    """The finished copies of `found` (source run id → copy as runs/search returns it) in one experiment."""
    if full or len(found) > INDEX_ABOVE:
        candidates: Iterable[JsonDict] = dst.search_runs([dst_experiment_id],
                                                         filter=f"tags.`{runs.SOURCE_RUN_ID_TAG}` LIKE '%'",
                                                         run_view_type="ALL")
    else:
        candidates = (c for run in found
                      for c in runs.find_imported(dst, dst_experiment_id, run["info"]["run_id"], src_uri))
    copies: dict[str, JsonDict] = {}
    for copy in candidates:
        tags = tags_of(copy.get("data") or {})
        if tags.get(runs.IMPORT_COMPLETE_TAG) != "true" or tags.get(runs.SOURCE_URI_TAG, src_uri) != src_uri:
            continue
        if runs.abandoned(copy):
            continue
        copies.setdefault(tags[runs.SOURCE_RUN_ID_TAG], copy)
    return copies


def _link_parents(dst: TrackingClient, pairs: Sequence[ExperimentPair], done: Sequence[RunSync],
                  copies_of: dict[str, str], src_uri: str) -> None:
    """Point each new copy at the copy of its parent (the parent may have been copied by an earlier sync)."""
    dst_exp_of = {p.src_id: p.dst_id for p in pairs}
    for result in done:
        if not (result.created and result.src_parent_run_id):
            continue
        parent = copies_of.get(result.src_parent_run_id)
        if parent is None:
            for exp_id in dst_exp_of.values():
                found = runs.find_imported(dst, exp_id, result.src_parent_run_id, src_uri)
                if found:
                    parent = str(found[0]["info"]["run_id"])
                    break
        if parent is not None:
            runs.link_parent(dst, result.dst_run_id, parent)


def delete_runs_deleted_at_source(src: TrackingClient, dst: TrackingClient, pairs: Sequence[ExperimentPair],
                                  full: bool, report: SyncReport) -> None:
    """Soft-delete the copies of runs deleted at the source (and, in a full comparison, of runs gone from it).

    Costs a paged search of the deleted runs on each side, and one search per newly deleted run.
    """
    for pair in pairs:
        deleted = {r["info"]["run_id"] for r in src.search_runs([pair.src_id], run_view_type="DELETED_ONLY")}
        copies = {tags_of(c["data"]).get(runs.SOURCE_RUN_ID_TAG): c
                  for c in dst.search_runs([pair.dst_id], filter=f"tags.`{runs.SOURCE_RUN_ID_TAG}` LIKE '%'",
                                           run_view_type="ALL" if full else "DELETED_ONLY")}
        already = {k for k, c in copies.items() if c["info"].get("lifecycle_stage") == "deleted"}
        gone: set[str] = set()
        if full:
            present = {r["info"]["run_id"] for r in src.search_runs([pair.src_id], run_view_type="ALL")}
            gone = {k for k, c in copies.items() if k and k not in present
                    and c["info"].get("lifecycle_stage") != "deleted"}
        for src_run_id in sorted((deleted - already) | gone):
            for copy in runs.find_imported(dst, pair.dst_id, src_run_id, src.uri):
                if copy["info"].get("lifecycle_stage") != "deleted":
                    try:
                        dst.delete_run(copy["info"]["run_id"])
                    except FerryError as err:
                        report.failed.append(f"run {src_run_id} (deleted at the source): {err.message}")
                        continue
                    report.counts.runs += 1


# -- lag -------------------------------------------------------------------------------------------


def pending_lag(src: TrackingClient, pairs: Sequence[ExperimentPair], started: int, ended: int) -> int:
    """Seconds since the oldest run change made during the sync, which the next sync will carry; 0 if none."""
    oldest: int | None = None
    ids = [p.src_id for p in pairs]
    for chunk in _chunks(ids, EXPERIMENT_IDS_PER_SEARCH):
        for query, key in ((f"attributes.start_time >= {started}", "start_time"),
                           (f"attributes.end_time >= {started}", "end_time")):
            for run in src.search_runs(chunk, filter=query, order_by=[f"attributes.{key} ASC"], page_size=1):
                value = int(run["info"].get(key) or started)
                oldest = value if oldest is None else min(oldest, value)
                break
        for run in src.search_runs(chunk, filter="attributes.status = 'RUNNING'"):
            # A running run that logged during the sync may have logged after it was read: count it
            # from the sync's start (an upper bound; MLflow keeps no time of a run's last change).
            logged = max((int(m.get("timestamp") or 0) for m in run.get("data", {}).get("metrics", [])), default=0)
            if logged >= started:
                oldest = started if oldest is None else min(oldest, started)
                break
    return 0 if oldest is None else max(0, (ended - oldest) // 1000)


def _lag(since: int | None, now_ms: int) -> int | None:
    """Nothing after `since` is known to be copied: the lag is at most that old."""
    return None if since is None else max(0, (now_ms - since) // 1000)


def _chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def _guarded(fn: Callable[[JsonDict], RunSync]) -> Callable[[JsonDict], RunSync | FerryError]:
    def guarded(run: JsonDict) -> RunSync | FerryError:
        try:
            return fn(run)
        except FerryError as err:
            return err

    return guarded

