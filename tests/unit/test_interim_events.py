"""video.submitted (once per job, before its final event) and video.progress (when asked for)."""

import json
from datetime import timedelta

import jsonschema
import pytest

from sora_relay.domain.events import EventType
from sora_relay.services.poll.outcome import Outcome
from sora_relay.services.submit.messages import Done, InboundMessage

from ..support.paths import ROOT

BODY = json.dumps({"request_id": "ad-1", "prompt": "a fox", "metadata": {"campaign": "spring"}})
SUBMITTED = EventType.SUBMITTED
PROGRESS = EventType.PROGRESS


def submit(world) -> None:
    assert world.submitter.handle(InboundMessage("m-1", BODY)) == Done()


def kinds(world) -> list[str]:
    return [event.event.value for event in world.publisher.published]


def matches_schema(event) -> bool:
    schema = json.loads((ROOT / "events" / "schemas" / f"{event.event.value}.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema).is_valid(json.loads(event.to_json()))


def test_accepted_submission_publishes_video_submitted_with_the_uuid_and_estimate(world) -> None:
    submit(world)
    [event] = world.publisher.published
    assert event.event is SUBMITTED
    assert event.event_id == "ad-1:video.submitted"
    assert (event.provider.uuid, event.provider.estimated_credit) == ("sora_abc", 30)
    assert event.request.prompt == "a fox"
    assert event.metadata == {"campaign": "spring"}
    assert (event.video, event.error) == (None, None)
    assert event.attributes() == {"event": "video.submitted", "request_id": "ad-1", "model": "sora-2", "family": "sora"}
    assert world.store.get("ad-1").submitted_event_published
    assert matches_schema(event)


def test_redelivered_message_publishes_no_second_video_submitted(world) -> None:
    submit(world)
    submit(world)
    assert kinds(world) == ["video.submitted"]


def test_request_the_provider_refused_publishes_no_video_submitted(world) -> None:
    world.submitter.handle(InboundMessage("m-1", json.dumps({"request_id": "bad", "prompt": " "})))
    assert kinds(world) == ["video.failed"]


def test_submitted_event_that_cannot_be_published_does_not_undo_the_submission(world) -> None:
    world.publisher.fail_when = lambda event: event.event is SUBMITTED
    world.publisher.failures = [ConnectionError("SNS unreachable")]
    submit(world)
    job = world.store.get("ad-1")
    assert job.provider.uuid == "sora_abc"
    assert not job.submitted_event_published
    assert world.metrics.counts["EventsDeferred"] == 1
    assert world.publisher.published == []


def test_submitted_event_owed_is_published_by_the_next_status_check(world) -> None:
    world.publisher.fail_when = lambda event: event.event is SUBMITTED
    world.publisher.failures = [ConnectionError("SNS unreachable")]
    submit(world)
    world.clock.advance(world.policy.poll_interval)
    assert world.poller.sweep().outcomes == {Outcome.RUNNING: 1}
    assert kinds(world) == ["video.submitted"]
    assert world.store.get("ad-1").submitted_event_published
    world.clock.advance(timedelta(minutes=10))
    world.poller.sweep()
    assert kinds(world) == ["video.submitted"]


def test_final_event_of_a_job_never_announced_comes_after_its_video_submitted(world) -> None:
    world.publisher.fail_when = lambda event: event.event is SUBMITTED
    world.publisher.failures = [ConnectionError("SNS unreachable")]
    submit(world)
    world.clock.advance(world.policy.poll_interval)
    world.provider.records = [world.record(status=3, error_code="POLICY")]
    assert world.poller.sweep().outcomes == {Outcome.FAILED: 1}
    assert kinds(world) == ["video.submitted", "video.failed"]


def test_progress_events_are_off_by_default(world) -> None:
    submit(world)
    world.clock.advance(world.policy.poll_interval)
    world.provider.records = [world.record(status=1, status_percentage=40)]
    world.poller.sweep()
    assert world.publisher.of(PROGRESS) == []


@pytest.fixture
def reporting(world):
    world.progress_events = True
    submit(world)
    return world


def test_progress_event_is_published_when_the_percentage_moves(reporting) -> None:
    reporting.clock.advance(reporting.policy.poll_interval)
    reporting.provider.records = [reporting.record(status=1, status_percentage=40)]
    reporting.poller.sweep()
    [event] = reporting.publisher.of(PROGRESS)
    assert (event.event_id, event.progress) == ("ad-1:video.progress:40", 40)
    assert event.provider.uuid == "sora_abc"
    assert event.attributes()["event"] == "video.progress"
    assert matches_schema(event)


def test_progress_that_did_not_move_publishes_nothing(reporting) -> None:
    for _ in range(2):
        reporting.clock.advance(timedelta(minutes=5))
        reporting.provider.records = [reporting.record(status=1, status_percentage=40)]
        reporting.poller.sweep()
    assert [event.progress for event in reporting.publisher.of(PROGRESS)] == [40]


def test_at_most_one_progress_event_per_poll_interval(reporting) -> None:
    # Moves seen less than an interval apart (a check made at the deadline, say): one event.
    reporting.clock.advance(reporting.policy.poll_interval)
    reporting.provider.records = [reporting.record(status=1, status_percentage=40)]
    reporting.poller.sweep()
    job = reporting.store.get("ad-1")
    reporting.clock.now = job.progress_at + reporting.policy.poll_interval / 2
    reporting.store.jobs["ad-1"] = job.check_again(reporting.clock.now, reporting.clock.now)
    reporting.provider.records = [reporting.record(status=1, status_percentage=70)]
    reporting.poller.sweep()
    assert [event.progress for event in reporting.publisher.of(PROGRESS)] == [40]
    assert reporting.store.get("ad-1").progress == 70


def test_progress_event_that_cannot_be_published_does_not_fail_the_check(reporting) -> None:
    reporting.publisher.fail_when = lambda event: event.event is PROGRESS
    reporting.publisher.failures = [ConnectionError("SNS unreachable")]
    reporting.clock.advance(reporting.policy.poll_interval)
    reporting.provider.records = [reporting.record(status=1, status_percentage=40)]
    assert reporting.poller.sweep().outcomes == {Outcome.RUNNING: 1}
    assert reporting.store.get("ad-1").progress == 40
    assert reporting.metrics.counts["ProgressEventsLost"] == 1


def test_every_event_of_a_job_comes_before_its_final_event(reporting) -> None:
    reporting.clock.advance(reporting.policy.poll_interval)
    reporting.provider.records = [reporting.record(status=1, status_percentage=50)]
    reporting.poller.sweep()
    reporting.clock.advance(timedelta(minutes=5))
    reporting.provider.records = [reporting.record(status=3, error_code="POLICY")]
    reporting.poller.sweep()
    assert kinds(reporting) == ["video.submitted", "video.progress", "video.failed"]
