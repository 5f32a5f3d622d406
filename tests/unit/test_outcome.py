from ferry.outcome import Counts, Outcome
from ferry.progress import Progress, Tracker


def test_termination_message_fits_the_kubernetes_limit() -> None:
    outcome = Outcome(phase="PartiallyFailed", counts=Counts(runs=3),
                      failed=[f"run {i:032d}: server said 500" for i in range(500)])
    text = outcome.to_termination_message()
    assert len(text.encode()) <= 4000
    back = Outcome.model_validate_json(text)
    assert back.phase == "PartiallyFailed" and back.counts.runs == 3
    assert 0 < len(back.failed) < 500


def test_tracker_reports_every_change() -> None:
    seen: list[Progress] = []
    tracker = Tracker(seen.append)
    tracker.add_total(3)
    tracker.advance()
    tracker.fail()
    assert seen[-1] == Progress(total=3, done=1, failed=1)
