"""How many finished Jobs a scheduled resource keeps, as a CronJob does.

``successfulJobsHistoryLimit`` / ``failedJobsHistoryLimit`` of the spec (defaults in
`ferry.api.common.ScheduleSpec`); the oldest go first. A deleted Job takes its pods with it.
"""

from __future__ import annotations

from typing import Any

from ferry.api.common import ScheduleSpec
from ferry.controller.actions import Actions, DeleteJob
from ferry.controller.jobstate import job_state


def prune(spec: ScheduleSpec, jobs: list[dict[str, Any]]) -> Actions:
    """Delete finished Jobs beyond the history limits, oldest first."""
    limits = {"Complete": spec.successful_jobs_history_limit, "Failed": spec.failed_jobs_history_limit}
    newest_first = sorted(jobs, key=lambda j: j["metadata"]["creationTimestamp"], reverse=True)
    actions: Actions = []
    for phase, limit in limits.items():
        finished = [j for j in newest_first if job_state(j).phase == phase]
        actions += [DeleteJob(old["metadata"]["name"]) for old in finished[limit:]]
    return actions
