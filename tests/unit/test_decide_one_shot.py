"""One-shot resources (an MlflowExport without a schedule, an MlflowImport): validate, start, follow.

`lifecycle.decide` as a user reads its result: the phase, message and conditions `kubectl get`
shows, the Events `kubectl describe` shows, and the one Job the resource gets.
"""

from __future__ import annotations

import pytest

from ferry.api.resources import MLFLOW_EXPORT, MLFLOW_IMPORT
from ferry.controller.actions import CreateJob
from ferry.controller.lifecycle import Observed, decide
from tests.unit.decisions import (
    EXPORT_SPEC,
    IMPORT_PVC_SPEC,
    IMPORT_REF_SPEC,
    NOW,
    NOW_TEXT,
    PATH,
    SETTINGS,
    ago,
    condition,
    created_job,
    events,
    job,
    kinds,
    mounts,
    patches,
    payload,
    resource,
    running_pod,
    said,
    the_patch,
    transition_times,
    volumes,
)

EXPORT_JOB = "nightly-f0552"  # <name>-<5 hex of the uid>
IMPORT_JOB = "restore-f0552"
REFUSED = 'Job.batch "nightly-f0552" is invalid: spec.template.spec.containers[0].image: Required value'


def export(status: dict | None = None, *, spec: dict | None = None, generation: int = 1):
    return resource(MLFLOW_EXPORT, spec or EXPORT_SPEC, status, generation=generation)


def restore(status: dict | None = None, *, spec: dict | None = None, created: str | None = None):
    return resource(MLFLOW_IMPORT, spec or IMPORT_REF_SPEC, status, name="restore", created=created)


def exported(status: dict | None, spec: dict | None = None):
    """The MlflowExport `backup` an import's exportRef names."""
    return resource(MLFLOW_EXPORT, spec or EXPORT_SPEC, status, name="backup")


def running(**extra: object) -> dict:
    return {"phase": "Running", "jobName": EXPORT_JOB, "observedGeneration": 1, "startTime": "2024-01-31T11:00:00Z",
            "conditions": [condition("Succeeded", "Unknown", "Running"), condition("Validated", "True", "SpecValid")],
            **extra}  # fmt: skip


# --- a new export ----------------------------------------------------------------------------------


def test_new_export_creates_its_job_then_says_pending() -> None:
    actions = decide(export(), Observed(), NOW, SETTINGS)
    assert kinds(actions) == ["CreateJob"]  # the JobCreated Event comes from the create itself
    create = created_job(actions)
    assert create.name == EXPORT_JOB
    assert create.job["metadata"]["annotations"] == {PATH: "nightly"}  # subPath without its slashes
    assert volumes(create.job)["data"]["persistentVolumeClaim"] == {"claimName": "backups", "readOnly": False}
    assert mounts(create.job)["data"] == {"name": "data", "mountPath": "/data", "readOnly": False}
    sent = payload(create.job)
    assert (sent["kind"], sent["name"], sent["namespace"]) == ("MlflowExport", "nightly", "ml")
    assert sent["outputPath"] == "/data/nightly" and "inputPath" not in sent
    assert sent["spec"] == EXPORT_SPEC

    patch = the_patch(create.then)
    assert patch["phase"] == "Pending" and patch["message"] == f"Job {EXPORT_JOB} created"
    assert patch["jobName"] == EXPORT_JOB and patch["observedGeneration"] == 1
    assert "validationErrors" in patch and patch["validationErrors"] is None  # removed
    assert said(patch, "Succeeded") == ("Unknown", "JobCreated", f"Job {EXPORT_JOB} created")
    assert said(patch, "Validated") == ("True", "SpecValid", None)
    assert {c["lastTransitionTime"] for c in patch["conditions"]} == {NOW_TEXT}


def test_export_to_the_claims_root_writes_to_data() -> None:
    spec = {**EXPORT_SPEC, "destination": {"pvc": {"claimName": "backups"}}}
    create = created_job(decide(export(spec=spec), Observed(), NOW, SETTINGS))
    assert payload(create.job)["outputPath"] == "/data"
    assert create.job["metadata"]["annotations"] == {PATH: ""}


def test_refused_job_fails_validation_once() -> None:
    create = created_job(decide(export(), Observed(), NOW, SETTINGS))
    instead = list(create.refused(REFUSED))
    error = f"spec.job: the Job was refused: {REFUSED}"
    patch = the_patch(instead)
    assert patch["phase"] == "FailedValidation" and patch["validationErrors"] == [error]
    assert patch["message"] == f"1 problem(s) in the spec: {error}"
    assert "jobName" not in patch
    assert said(patch, "Validated") == ("False", "InvalidSpec", patch["message"])
    assert said(patch, "Succeeded") == ("False", "FailedValidation", patch["message"])
    assert events(instead) == [("FailedValidation", patch["message"], True)]

    # The next look tries again (the spec may have been fixed); the same refusal is not said twice.
    refused = export(patch)
    again = created_job(decide(refused, Observed(), NOW, SETTINGS))
    assert again.name == EXPORT_JOB
    assert list(again.refused(REFUSED)) == []


# --- validation ------------------------------------------------------------------------------------

INVALID_EXPORT = {
    **EXPORT_SPEC,
    "objects": {},
    "destination": {"pvc": {"claimName": "backups", "subPath": "../elsewhere"}},
    "job": {"resources": {"limits": {"memory": "lots"}}},
}
INVALID_ERRORS = [
    "spec.objects: names nothing to export; list experiments, runIds, models, modelVersions, prompts, "
    "evaluationDatasets, loggedModels, traces or webhooks",
    "spec.destination.pvc.subPath: '..' is not allowed; the path must stay inside the claim",
    "spec.job.resources.limits.memory: 'lots' is not a quantity (e.g. 500m, 1Gi)",
]


def test_invalid_spec_lists_every_problem_and_starts_nothing() -> None:
    actions = decide(export(spec=INVALID_EXPORT, generation=3), Observed(), NOW, SETTINGS)
    assert kinds(actions) == ["PatchStatus", "Emit"]
    patch = the_patch(actions)
    summary = "3 problem(s) in the spec: " + "; ".join(INVALID_ERRORS)
    assert patch["phase"] == "FailedValidation"
    assert patch["validationErrors"] == INVALID_ERRORS
    assert patch["message"] == summary and patch["observedGeneration"] == 3
    assert said(patch, "Validated") == ("False", "InvalidSpec", summary)
    assert said(patch, "Succeeded") == ("False", "FailedValidation", summary)
    assert {c["observedGeneration"] for c in patch["conditions"]} == {3}
    assert events(actions) == [("FailedValidation", summary, True)]


def test_the_same_problems_are_not_said_again() -> None:
    first = export(spec=INVALID_EXPORT)
    failed = first.patched(decide(first, Observed(), NOW, SETTINGS)[0].status)
    assert decide(failed, Observed(), NOW, SETTINGS) == []


def test_other_problems_are_said() -> None:
    first = export(spec=INVALID_EXPORT)
    failed = first.patched(decide(first, Observed(), NOW, SETTINGS)[0].status)
    fewer = resource(MLFLOW_EXPORT, {**INVALID_EXPORT, "objects": {"experiments": ["churn"]}},
                     failed.body["status"], generation=2)  # fmt: skip
    actions = decide(fewer, Observed(), NOW, SETTINGS)
    assert the_patch(actions)["validationErrors"] == INVALID_ERRORS[1:]
    assert [reason for reason, _, _ in events(actions)] == ["FailedValidation"]


def test_fixed_spec_after_failed_validation_starts() -> None:
    invalid = {
        "phase": "FailedValidation", "observedGeneration": 1, "validationErrors": INVALID_ERRORS,
        "message": "3 problem(s) in the spec: ...",
        "conditions": [condition("Succeeded", "False", "FailedValidation"),
                       condition("Validated", "False", "InvalidSpec")],
    }  # fmt: skip
    actions = decide(export(invalid, generation=2), Observed(), NOW, SETTINGS)
    create = created_job(actions)
    assert create.name == EXPORT_JOB
    patch = the_patch(create.then)
    assert patch["phase"] == "Pending" and patch["validationErrors"] is None
    assert patch["observedGeneration"] == 2 and patch["message"] == f"Job {EXPORT_JOB} created"
    assert said(patch, "Validated") == ("True", "SpecValid", None)
    assert transition_times(patch) == {"Validated": NOW_TEXT, "Succeeded": NOW_TEXT}


@pytest.mark.parametrize("phase", ["Succeeded", "PartiallyFailed", "Failed"])
def test_a_finished_resource_is_left_alone(phase: str) -> None:
    # e.g. an import whose export failed: it ended without a Job
    done = {"phase": phase, "message": "over", "observedGeneration": 1}
    assert decide(export(done, generation=2), Observed(), NOW, SETTINGS) == []
    assert decide(restore(done), Observed(export=exported(None)), NOW, SETTINGS) == []


def test_a_finished_job_is_not_read_again() -> None:
    done = {"phase": "Succeeded", "jobName": EXPORT_JOB, "observedGeneration": 1}
    assert decide(export(done), Observed(job_read=True, job=None), NOW, SETTINGS) == []


# --- once started -----------------------------------------------------------------------------------


def test_spec_change_after_start_is_reported_once_per_generation() -> None:
    changed = export(running(), generation=2)
    actions = decide(changed, Observed(), NOW, SETTINGS)
    message = "MlflowExport started with generation 1; it cannot change once started"
    assert kinds(actions) == ["PatchStatus", "Emit"]
    patch = the_patch(actions)
    assert set(patch) == {"conditions"}  # phase, jobName and the Job are untouched
    assert said(patch, "SpecApplied") == ("False", "SpecChangeIgnored", message)
    assert {c["type"]: c["observedGeneration"] for c in patch["conditions"]}["SpecApplied"] == 2
    assert said(patch, "Succeeded") == ("Unknown", "Running", None)  # the others are kept
    assert events(actions) == [("SpecChangeIgnored", message, True)]

    told = changed.patched(actions[0].status)
    assert decide(told, Observed(), NOW, SETTINGS) == []
    newer = resource(MLFLOW_EXPORT, EXPORT_SPEC, told.body["status"], generation=3)
    assert [reason for reason, _, _ in events(decide(newer, Observed(), NOW, SETTINGS))] == [
        "SpecChangeIgnored"
    ]


def test_spec_change_of_an_import_names_the_kind() -> None:
    started = {**running(), "jobName": IMPORT_JOB}
    actions = decide(
        resource(MLFLOW_IMPORT, IMPORT_PVC_SPEC, started, generation=4), Observed(), NOW, SETTINGS
    )
    assert events(actions) == [
        ("SpecChangeIgnored", "MlflowImport started with generation 1; it cannot change once started", True)
    ]


def test_unchanged_spec_of_a_started_resource_says_nothing() -> None:
    assert decide(export(running()), Observed(), NOW, SETTINGS) == []


def test_job_gone_before_it_finished_fails() -> None:
    actions = decide(export(running()), Observed(job_read=True, job=None), NOW, SETTINGS)
    message = f"Job {EXPORT_JOB} disappeared before it finished"
    patch = the_patch(actions)
    assert patch["phase"] == "Failed" and patch["message"] == message
    assert patch["completionTime"] == NOW_TEXT
    assert said(patch, "Succeeded") == ("False", "Failed", message)
    assert said(patch, "Validated") == ("True", "SpecValid", None)
    assert events(actions) == [("Failed", message, True)]


def test_job_gone_after_a_spec_change_keeps_the_notice() -> None:
    actions = decide(export(running(), generation=2), Observed(job_read=True, job=None), NOW, SETTINGS)
    assert [reason for reason, _, _ in events(actions)] == ["SpecChangeIgnored", "Failed"]
    _, failed = patches(actions)
    assert failed["phase"] == "Failed"
    assert said(failed, "SpecApplied")[:2] == ("False", "SpecChangeIgnored")  # not lost by the second patch


def test_job_not_read_says_nothing() -> None:
    assert decide(export(running()), Observed(job_read=False), NOW, SETTINGS) == []


def test_job_read_and_running_brings_pending_to_running() -> None:
    pending = {**running(), "phase": "Pending", "startTime": None}
    observed = Observed(job_read=True, job=job(EXPORT_JOB, "Running"), pods=[running_pod()])
    actions = decide(export(pending), observed, NOW, SETTINGS)
    patch = the_patch(actions)
    assert (patch["phase"], patch["message"]) == ("Running", f"Job {EXPORT_JOB} is running")
    assert patch["startTime"] == "2024-01-31T03:00:02Z"
    assert events(actions) == [("Running", f"Job {EXPORT_JOB} is running", False)]


# --- imports ----------------------------------------------------------------------------------------


def test_import_from_a_claim_mounts_it_read_only() -> None:
    actions = decide(restore(spec=IMPORT_PVC_SPEC), Observed(), NOW, SETTINGS)
    create = created_job(actions)
    assert create.name == IMPORT_JOB
    assert volumes(create.job)["data"]["persistentVolumeClaim"] == {"claimName": "archive", "readOnly": True}
    assert mounts(create.job)["data"]["readOnly"] is True
    sent = payload(create.job)
    assert sent["inputPath"] == "/data/exports/nightly-20240131T030000Z" and "outputPath" not in sent
    assert create.job["metadata"]["annotations"] == {PATH: "exports/nightly-20240131T030000Z"}
    patch = the_patch(create.then)
    assert patch["phase"] == "Pending" and patch["sourcePath"] == "exports/nightly-20240131T030000Z"
    assert patch["message"] == f"Job {IMPORT_JOB} created"


def test_import_waits_for_an_export_that_does_not_exist_yet() -> None:
    waiting = restore(created=ago(10))
    actions = decide(waiting, Observed(export=None), NOW, SETTINGS)
    message = "MlflowExport backup does not exist yet"
    patch = the_patch(actions)
    assert (patch["phase"], patch["message"]) == ("Pending", message)
    assert patch["validationErrors"] is None and patch["observedGeneration"] == 1
    assert said(patch, "Succeeded") == ("Unknown", "WaitingForExport", message)
    assert events(actions) == [("WaitingForExport", message, False)]
    assert decide(waiting.patched(actions[0].status), Observed(export=None), NOW, SETTINGS) == []


def test_import_fails_validation_when_the_export_never_appears() -> None:
    late = restore({"phase": "Pending", "message": "MlflowExport backup does not exist yet"}, created=ago(31))
    actions = decide(late, Observed(export=None), NOW, SETTINGS)
    error = "spec.source.exportRef.name: MlflowExport 'backup' does not exist in namespace ml"
    patch = the_patch(actions)
    assert patch["phase"] == "FailedValidation" and patch["validationErrors"] == [error]
    assert events(actions) == [("FailedValidation", f"1 problem(s) in the spec: {error}", True)]


def test_import_of_a_scheduled_export_fails_validation() -> None:
    scheduled = exported({"phase": "Succeeded", "claimName": "backups", "path": "x"},
                         spec={**EXPORT_SPEC, "schedule": "0 3 * * *"})  # fmt: skip
    actions = decide(restore(), Observed(export=scheduled), NOW, SETTINGS)
    assert the_patch(actions)["validationErrors"] == [
        "spec.source.exportRef.name: MlflowExport 'backup' is scheduled; import one of its exports with source.pvc or source.s3"
    ]
    assert not [a for a in actions if isinstance(a, CreateJob)]


@pytest.mark.parametrize(("status", "words"), [
    ({"phase": "Running", "jobName": "backup-1"}, "Running"),
    ({"phase": "Pending"}, "Pending"),
    (None, "not started"),
    ({"phase": "Succeeded"}, "Succeeded"),  # no claimName yet: not readable
])  # fmt: skip
def test_import_waits_while_the_export_is_not_done(status: dict | None, words: str) -> None:
    actions = decide(restore(), Observed(export=exported(status)), NOW, SETTINGS)
    message = f"Waiting for MlflowExport backup ({words})"
    assert the_patch(actions)["message"] == message
    assert events(actions) == [("WaitingForExport", message, False)]


def test_a_new_reason_to_wait_is_written_without_another_event() -> None:
    waiting = restore({"phase": "Pending", "message": "MlflowExport backup does not exist yet"})
    actions = decide(waiting, Observed(export=exported({"phase": "Running"})), NOW, SETTINGS)
    assert the_patch(actions)["message"] == "Waiting for MlflowExport backup (Running)"
    assert events(actions) == []


@pytest.mark.parametrize("phase", ["Succeeded", "PartiallyFailed"])
def test_import_starts_on_the_exports_claim_and_path(phase: str) -> None:
    done = exported({"phase": phase, "claimName": "backups", "path": "nightly"})
    actions = decide(
        restore({"phase": "Pending", "message": "waiting"}), Observed(export=done), NOW, SETTINGS
    )
    create = created_job(actions)
    assert volumes(create.job)["data"]["persistentVolumeClaim"] == {"claimName": "backups", "readOnly": True}
    assert payload(create.job)["inputPath"] == "/data/nightly"
    assert create.job["metadata"]["annotations"] == {PATH: "nightly"}
    patch = the_patch(create.then)
    assert (patch["phase"], patch["sourcePath"], patch["jobName"]) == ("Pending", "nightly", IMPORT_JOB)


def test_import_of_an_export_at_the_claims_root() -> None:
    done = exported({"phase": "Succeeded", "claimName": "backups"})
    create = created_job(decide(restore(), Observed(export=done), NOW, SETTINGS))
    assert payload(create.job)["inputPath"] == "/data"
    assert the_patch(create.then)["sourcePath"] is None


@pytest.mark.parametrize("phase", ["Failed", "FailedValidation"])
def test_import_fails_with_the_exports_message(phase: str) -> None:
    failed = exported({"phase": phase, "message": "connection refused"})
    actions = decide(restore(), Observed(export=failed), NOW, SETTINGS)
    message = f"MlflowExport backup {phase}: connection refused"
    patch = the_patch(actions)
    assert (patch["phase"], patch["message"], patch["completionTime"]) == ("Failed", message, NOW_TEXT)
    assert said(patch, "Succeeded") == ("False", "Failed", message)
    assert events(actions) == [("Failed", message, True)]
    assert not [a for a in actions if isinstance(a, CreateJob)]


def test_import_failed_validation_then_its_export_appears() -> None:
    error = "spec.source.exportRef.name: MlflowExport 'backup' does not exist in namespace ml"
    refused = restore({"phase": "FailedValidation", "validationErrors": [error], "observedGeneration": 1},
                      created=ago(600))  # fmt: skip
    done = exported({"phase": "Succeeded", "claimName": "backups", "path": "nightly"})
    patch = the_patch(created_job(decide(refused, Observed(export=done), NOW, SETTINGS)).then)
    assert patch["phase"] == "Pending" and patch["validationErrors"] is None
