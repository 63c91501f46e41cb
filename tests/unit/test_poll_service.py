import json
import math
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from sora_relay.adapters.dynamodb import shard_of
from sora_relay.domain.jobs import JobState
from sora_relay.domain.provider import Accepted, ProviderUnavailable
from sora_relay.services.poll import service as poll_service_module
from sora_relay.services.poll.outcome import Outcome
from sora_relay.services.submit.messages import InboundMessage

from ..support.fakes import InFlight


@pytest.fixture
def submitted(world):
    body = json.dumps({"request_id": "ad-1", "prompt": "a fox", "metadata": {"k": "v"}})
    world.submitter.handle(InboundMessage("m-1", body))
    world.clock.advance(world.policy.poll_interval)
    return world


def test_job_not_yet_due_is_not_checked(world) -> None:
    world.submitter.handle(InboundMessage("m-1", json.dumps({"prompt": "a fox"})))
    assert world.poller.sweep().outcomes == {}
    assert world.provider.status_calls == []


def test_running_job_records_progress_and_waits_at_least_the_interval(submitted) -> None:
    submitted.provider.records = [submitted.record(status=1, status_percentage=40)]
    assert submitted.poller.sweep().outcomes == {Outcome.RUNNING: 1}
    job = submitted.store.get("ad-1")
    assert job.progress == 40
    assert job.next_check_at - submitted.clock.now >= submitted.policy.poll_interval


def test_slow_job_is_checked_at_most_every_five_minutes(submitted) -> None:
    submitted.clock.advance(timedelta(minutes=30) - submitted.policy.poll_interval)
    submitted.provider.records = [submitted.record(status=1, status_percentage=40)]
    submitted.poller.sweep()
    job = submitted.store.get("ad-1")
    assert job.next_check_at - submitted.clock.now == timedelta(minutes=5)


def test_next_check_aims_at_the_finish_the_progress_trend_predicts(submitted) -> None:
    submitted.provider.records = [submitted.record(status=1, status_percentage=20)]
    submitted.poller.sweep()  # 20 % after 30 s: about 120 s to go
    job = submitted.store.get("ad-1")
    assert job.next_check_at - submitted.clock.now == timedelta(seconds=120) * 1.05
    assert job.progress_at == submitted.clock.now


def test_unknown_status_keeps_the_job_running(submitted) -> None:
    submitted.provider.records = [submitted.record(status="queued")]
    assert submitted.poller.sweep().outcomes == {Outcome.RUNNING: 1}
    assert submitted.store.get("ad-1").state is JobState.SUBMITTED


def test_status_2_without_an_address_is_not_done(submitted) -> None:
    submitted.provider.records = [submitted.record(status=2)]
    assert submitted.poller.sweep().outcomes == {Outcome.RUNNING: 1}
    assert submitted.archive_queue.sent == []


def test_status_3_ends_as_generation_failed_with_the_provider_reason(submitted) -> None:
    submitted.provider.records = [submitted.record(status=3, error_code="POLICY", error_message="refused")]
    submitted.poller.sweep()
    [event] = submitted.publisher.finals
    assert event.error.code == "generation_failed"
    assert "POLICY: refused" in event.error.message
    assert event.provider.uuid == "sora_abc"
    assert event.metadata == {"k": "v"}


def test_finished_video_is_handed_to_the_archiver(submitted) -> None:
    url = "https://cdn.geminigen.ai/v/1.mp4"
    submitted.provider.records = [submitted.record(status=2, generated_video=[{"video_url": url}])]
    assert submitted.poller.sweep().outcomes == {Outcome.HANDED_OFF: 1}
    job = submitted.store.get("ad-1")
    assert job.state is JobState.COMPLETED
    assert job.video_url == url
    assert submitted.archive_queue.sent == ["ad-1"]


def test_job_past_the_maximum_wait_times_out(submitted) -> None:
    submitted.clock.advance(submitted.policy.max_wait)
    submitted.poller.sweep()
    [event] = submitted.publisher.finals
    assert event.error.code == "timed_out"
    assert submitted.store.get("ad-1").next_check_at is None


def test_video_finished_at_the_deadline_is_handed_off_not_timed_out(submitted) -> None:
    submitted.clock.advance(submitted.policy.max_wait)
    submitted.provider.records = [submitted.record(status=2, video_url="https://x.geminigen.ai/1.mp4")]
    assert submitted.poller.sweep().outcomes == {Outcome.HANDED_OFF: 1}
    assert submitted.publisher.finals == []


def test_no_check_is_scheduled_past_the_deadline(submitted) -> None:
    submitted.clock.advance(submitted.policy.max_wait - timedelta(minutes=2))
    submitted.provider.records = [submitted.record(status=1, status_percentage=40)]
    submitted.poller.sweep()
    job = submitted.store.get("ad-1")
    assert job.next_check_at == job.submitted_at + submitted.policy.max_wait


def test_status_unreadable_at_the_deadline_is_asked_again_within_the_grace(submitted) -> None:
    submitted.clock.advance(submitted.policy.max_wait)
    submitted.provider.records = [ProviderUnavailable("HTTP 503")]
    assert submitted.poller.sweep().outcomes == {Outcome.UNREACHABLE: 1}
    assert submitted.publisher.finals == []


def test_status_unreadable_past_the_grace_times_out_saying_so(submitted) -> None:
    submitted.clock.advance(submitted.policy.max_wait + submitted.policy.last_call_grace)
    submitted.provider.records = [ProviderUnavailable("HTTP 503")]
    submitted.poller.sweep()
    [event] = submitted.publisher.finals
    assert event.error.code == "timed_out"
    assert "could not be read at the end: HTTP 503" in event.error.message


def test_unreachable_provider_reschedules_the_check(submitted) -> None:
    submitted.provider.records = [ProviderUnavailable("HTTP 503")]
    assert submitted.poller.sweep().outcomes == {Outcome.UNREACHABLE: 1}
    job = submitted.store.get("ad-1")
    assert job.state is JobState.SUBMITTED
    assert job.next_check_at > submitted.clock.now


def test_retry_after_on_a_status_call_is_honoured(submitted) -> None:
    submitted.provider.records = [ProviderUnavailable("HTTP 429", retry_after=120)]
    submitted.poller.sweep()
    assert submitted.store.get("ad-1").next_check_at - submitted.clock.now == timedelta(seconds=120)


def test_handoff_not_archived_in_time_is_sent_again(submitted) -> None:
    submitted.provider.records = [submitted.record(status=2, video_url="https://x.geminigen.ai/1.mp4")]
    submitted.poller.sweep()
    submitted.clock.advance(submitted.policy.handoff_watchdog)
    submitted.poller.sweep()
    assert submitted.archive_queue.sent == ["ad-1", "ad-1"]


def test_handoff_past_expired_at_ends_as_expired(submitted) -> None:
    submitted.provider.records = [submitted.record(status=2, video_url="https://x.geminigen.ai/1.mp4")]
    submitted.poller.sweep()
    submitted.clock.advance(timedelta(days=2))
    submitted.poller.sweep()
    [event] = submitted.publisher.finals
    assert event.error.code == "expired"


def test_event_whose_publication_failed_is_published_by_a_later_sweep(submitted) -> None:
    submitted.provider.records = [submitted.record(status=3)]
    submitted.publisher.failures = [ConnectionError("SNS down")]
    submitted.poller.sweep()
    assert submitted.publisher.finals == []
    submitted.clock.advance(submitted.policy.publish_watchdog)
    assert submitted.poller.sweep().outcomes == {Outcome.PUBLISHED: 1}
    assert [e.event_id for e in submitted.publisher.finals] == ["ad-1:video.failed"]
    assert submitted.store.get("ad-1").next_check_at is None


def test_finished_job_costs_later_sweeps_nothing(submitted) -> None:
    submitted.provider.records = [submitted.record(status=3)]
    submitted.poller.sweep()
    submitted.clock.advance(timedelta(hours=1))
    assert submitted.poller.sweep().outcomes == {}
    assert len(submitted.provider.status_calls) == 1


@pytest.fixture
def stranded(world):
    """A claim whose invocation died before submitting, and whose message never came back."""
    world.files.failures["s3://in/ref.png"] = RuntimeError("the container died")
    body = json.dumps({"prompt": "a fox", "files": ["s3://in/ref.png"]})
    with pytest.raises(RuntimeError):
        world.submitter.handle(InboundMessage("m-7", body))
    world.files.failures.clear()
    return world


def test_stranded_claim_goes_back_on_the_request_queue(stranded) -> None:
    stranded.clock.advance(2 * stranded.policy.claim_lease)
    assert stranded.poller.sweep().outcomes == {Outcome.REQUEUED: 1}
    [(request_id, request)] = stranded.request_queue.resent
    assert request_id == "m-7"
    assert request.prompt == "a fox"


def test_requeued_claim_is_submitted_once_under_its_request_id(stranded) -> None:
    stranded.clock.advance(2 * stranded.policy.claim_lease)
    stranded.poller.sweep()
    [(request_id, request)] = stranded.request_queue.resent
    body = json.dumps({**request.as_message(), "request_id": request_id})  # as the request queue resends it
    stranded.submitter.handle(InboundMessage("m-8", body))
    assert stranded.store.get("m-7").state is JobState.SUBMITTED
    assert len(stranded.provider.submitted) == 1


def test_claim_started_but_never_submitted_times_out_at_the_maximum_wait_from_its_start(stranded) -> None:
    stranded.clock.advance(stranded.policy.max_wait + timedelta(minutes=1))
    stranded.poller.sweep()
    [event] = stranded.publisher.finals
    assert event.error.code == "timed_out"
    assert "did not accept the request within 120 minutes of its start" in event.error.message


def test_handoff_close_to_expiry_is_checked_before_it_and_counted_at_risk(submitted) -> None:
    expiry = submitted.clock.now + timedelta(minutes=70)
    submitted.provider.records = [
        submitted.record(status=2, video_url="https://x.geminigen.ai/1.mp4", expired_at=expiry.isoformat())
    ]
    submitted.poller.sweep()
    checks = []
    while submitted.metrics.counts["ArchivesAtRisk"] == 0:
        submitted.clock.now = submitted.store.get("ad-1").next_check_at
        checks.append(submitted.clock.now)
        submitted.poller.sweep()  # not begun: sent again
    assert checks[-1] == expiry - submitted.policy.archive_risk_window
    assert submitted.archive_queue.sent == ["ad-1"] * (len(checks) + 1)


def test_handoff_not_begun_is_watched_soon_then_less_often(submitted) -> None:
    submitted.provider.records = [submitted.record(status=2, video_url="https://x.geminigen.ai/1.mp4")]
    finished = submitted.clock.now
    submitted.poller.sweep()
    waits = []
    for _ in range(6):
        due = submitted.store.get("ad-1").next_check_at
        waits.append(round((due - submitted.clock.now).total_seconds() / 60))
        submitted.clock.now = due
        submitted.poller.sweep()
    assert waits == [2, 2, 4, 8, 16, 20]
    assert submitted.clock.now - finished == timedelta(minutes=52)


def test_handoff_whose_message_was_lost_is_sent_again_within_minutes(submitted) -> None:
    submitted.provider.records = [submitted.record(status=2, video_url="https://x.geminigen.ai/1.mp4")]
    submitted.poller.sweep()
    submitted.archive_queue.sent.clear()  # the invocation that sent it died as it did
    submitted.clock.advance(submitted.policy.handoff_first_check)
    submitted.poller.sweep()
    assert submitted.archive_queue.sent == ["ad-1"]


def test_sweep_hands_off_the_soonest_expiring_video_first(world) -> None:
    late, soon = world.clock.now + timedelta(days=5), world.clock.now + timedelta(days=1)
    for request_id, expiry in (("late", late), ("soon", soon)):
        world.provider.outcomes.append(Accepted(world.record(uuid=request_id, expired_at=expiry.isoformat())))
        world.submitter.handle(InboundMessage(request_id, json.dumps({"request_id": request_id, "prompt": "a"})))
    world.clock.advance(world.policy.poll_interval)
    ready = [world.record(status=2, video_url="https://x.geminigen.ai/v.mp4")] * 2
    world.provider.records = ready
    poller = replace(world.poller, concurrency=1)
    poller.sweep()
    assert world.archive_queue.sent == ["soon", "late"]


def test_one_invocation_sweeps_again_when_a_job_comes_due_within_its_window(world) -> None:
    world.submitter.handle(InboundMessage("m-1", json.dumps({"request_id": "w-1", "prompt": "a fox"})))
    world.clock.advance(world.policy.poll_interval)
    world.provider.records = [
        world.record(status=1, status_percentage=90),  # due again in 30 s: within the window
        world.record(status=2, video_url="https://x.geminigen.ai/v.mp4"),
    ]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        world.clock.advance(timedelta(seconds=seconds))

    outcomes = replace(world.poller, sleep=sleep).sweep_while(lambda: math.inf)
    assert outcomes == {Outcome.RUNNING: 1, Outcome.HANDED_OFF: 1}
    assert slept == [30.0]


def test_one_invocation_stops_when_nothing_comes_due_within_its_window(world) -> None:
    world.submitter.handle(InboundMessage("m-1", json.dumps({"request_id": "w-1", "prompt": "a fox"})))
    world.clock.advance(world.policy.poll_interval)
    world.provider.records = [world.record(status=1, status_percentage=5)]
    slept: list[float] = []
    outcomes = replace(world.poller, sleep=slept.append).sweep_while(lambda: math.inf)
    assert outcomes == {Outcome.RUNNING: 1}
    assert slept == []


def test_backlog_left_when_time_runs_out_is_fanned_out_by_shard(world) -> None:
    for number in range(3):
        world.submitter.handle(InboundMessage(f"m-{number}", json.dumps({"prompt": f"fox {number}"})))
    world.clock.advance(world.policy.poll_interval)
    poller = replace(world.poller, batch_size=2)
    outcomes = poller.sweep_while(lambda: 0)
    assert outcomes == {Outcome.LEFT_DUE: 2}  # the first page's checks, queued and not made
    assert world.provider.status_calls == []
    assert world.sweep_queue.fanned_out == [0]


def test_sweep_of_one_shard_checks_only_that_shard(world) -> None:
    world.submitter.handle(InboundMessage("m-1", json.dumps({"prompt": "a fox"})))
    world.clock.advance(world.policy.poll_interval)
    assert world.poller.sweep(shards=[]).outcomes == {}
    assert world.poller.sweep(shards=[0]).outcomes == {Outcome.RUNNING: 1}


def test_no_backlog_fans_nothing_out(submitted) -> None:
    submitted.poller.sweep_while(lambda: math.inf)
    assert submitted.sweep_queue.fanned_out == []


def test_only_shards_left_with_due_jobs_are_fanned_out(world) -> None:
    world.store.shards = 8
    request_ids = [f"r-{number}" for number in range(3)]
    for request_id in request_ids:
        world.submitter.handle(InboundMessage(request_id, json.dumps({"request_id": request_id, "prompt": "a fox"})))
    world.clock.advance(world.policy.poll_interval)
    poller = replace(world.poller, batch_size=2, shards=8)
    poller.sweep_while(lambda: 0)
    assert world.sweep_queue.fanned_out == sorted({shard_of(request_id, 8) for request_id in request_ids})


def test_checks_queued_when_status_calls_are_slow_are_left_due_and_the_sweep_ends_in_time(world) -> None:
    for number in range(40):
        world.submitter.handle(InboundMessage(f"m-{number}", json.dumps({"prompt": f"fox {number}"})))
    world.clock.advance(world.policy.poll_interval)
    world.provider.status = InFlight(pause=0.05).around(world.provider.status)  # type: ignore[method-assign]
    reserve = poll_service_module.SWEEP_RESERVE.total_seconds()
    ends_at = time.monotonic() + 0.3  # the invocation's deadline, less its reserve, in 0.3 s
    given_back: list[int] = []
    world.sweep_queue.fan_out = lambda shards: given_back.append(len(world.store.sweep_leases))  # type: ignore[method-assign]
    poller = replace(world.poller, concurrency=2, window=timedelta(0))
    outcomes = poller.sweep_while(lambda: ends_at - time.monotonic() + reserve)
    assert time.monotonic() - ends_at < 0.2  # at most the calls in flight ran past it
    assert outcomes[Outcome.LEFT_DUE] > 0
    assert outcomes[Outcome.RUNNING] + outcomes[Outcome.LEFT_DUE] == 40
    assert given_back == [0]  # fanned out after the sweep lease was given back


def test_a_429_to_a_status_call_pauses_the_whole_sweeps_calls(world) -> None:
    for number in range(6):
        world.submitter.handle(InboundMessage(f"m-{number}", json.dumps({"prompt": f"fox {number}"})))
    world.clock.advance(world.policy.poll_interval)
    world.provider.records = [ProviderUnavailable("status answered HTTP 429", 60, throttled=True)]
    outcomes = replace(world.poller, concurrency=1).sweep().outcomes
    assert outcomes == {Outcome.UNREACHABLE: 6}
    assert len(world.provider.status_calls) == 1
    assert all(job.next_check_at >= world.clock.now + timedelta(seconds=60) for job in world.store.jobs.values())


def test_without_a_window_no_next_due_time_is_read(submitted, monkeypatch) -> None:
    def unexpected(shard: int) -> None:
        raise AssertionError("next_due read")

    monkeypatch.setattr(submitted.store, "next_due", unexpected)
    outcomes = replace(submitted.poller, window=timedelta(0)).sweep_while(lambda: math.inf)
    assert outcomes == {Outcome.RUNNING: 1}


def test_sweep_checks_every_due_job_page_by_page_each_once(world) -> None:
    for number in range(5):
        world.submitter.handle(InboundMessage(f"m-{number}", json.dumps({"prompt": f"fox {number}"})))
    world.clock.advance(world.policy.poll_interval)
    report = replace(world.poller, batch_size=2).sweep()
    assert report.outcomes == {Outcome.RUNNING: 5}
    assert len(world.provider.status_calls) == 5
    assert report.backlogged == []


def test_status_calls_in_flight_never_exceed_the_concurrency(world) -> None:
    status_calls = InFlight(pause=0.01)
    for number in range(24):
        world.submitter.handle(InboundMessage(f"m-{number}", json.dumps({"prompt": f"fox {number}"})))
    world.clock.advance(world.policy.poll_interval)
    world.provider.status = status_calls.around(world.provider.status)  # type: ignore[method-assign]
    assert replace(world.poller, concurrency=3).sweep().outcomes == {Outcome.RUNNING: 24}
    assert status_calls.most == 3


def test_check_that_raises_is_put_off_with_a_backoff(submitted) -> None:
    submitted.provider.records = [RuntimeError("Secrets Manager unavailable")]
    assert submitted.poller.sweep().outcomes == {Outcome.ERRORED: 1}
    job = submitted.store.get("ad-1")
    assert job.next_check_at >= submitted.clock.now + submitted.policy.poll_interval


def test_invocation_whose_checks_all_raise_makes_one_status_call_per_job(submitted) -> None:
    class Unavailable:
        def __call__(self, uuid: str) -> None:
            submitted.provider.status_calls.append(uuid)
            raise RuntimeError("Secrets Manager unavailable")

    submitted.provider.status = Unavailable()
    submitted.store.fail_next_save = RuntimeError("DynamoDB unavailable")  # the backoff is lost too
    sweeps_left = iter(range(100))
    poller = replace(submitted.poller, sleep=lambda seconds: None)
    poller.sweep_while(lambda: math.inf if next(sweeps_left, None) is not None else 0)
    assert submitted.provider.status_calls == [submitted.store.get("ad-1").provider.uuid]


def test_overlapping_sweeps_check_each_job_once(world) -> None:
    for number in range(6):
        world.submitter.handle(InboundMessage(f"m-{number}", json.dumps({"prompt": f"fox {number}"})))
    world.clock.advance(world.policy.poll_interval)
    world.provider.status = InFlight(pause=0.05).around(world.provider.status)  # type: ignore[method-assign]
    with ThreadPoolExecutor(max_workers=2) as pool:
        poller = replace(world.poller, window=timedelta(0))
        sweeps = [pool.submit(poller.sweep_while, lambda: math.inf) for _ in range(2)]
        outcomes = Counter[Outcome]()
        for sweep in sweeps:
            outcomes.update(sweep.result())
    assert outcomes == {Outcome.RUNNING: 6}
    assert len(world.provider.status_calls) == 6


def test_shard_swept_by_another_invocation_is_left_to_it(submitted) -> None:
    now = submitted.clock.now
    assert submitted.store.take_sweep(0, "another", now + timedelta(minutes=5), now)
    assert submitted.poller.sweep_while(lambda: math.inf) == {}
    assert submitted.provider.status_calls == []
    assert submitted.sweep_queue.fanned_out == []
    assert submitted.metrics.counts["SweepsSkipped"] == 1


def test_sweep_lease_of_an_invocation_that_died_runs_out(submitted) -> None:
    now = submitted.clock.now
    submitted.store.take_sweep(0, "died", now + timedelta(seconds=20), now)
    submitted.clock.advance(timedelta(seconds=20))
    assert submitted.poller.sweep_while(lambda: math.inf) == {Outcome.RUNNING: 1}


def test_sweep_gives_its_lease_back_when_done(submitted) -> None:
    submitted.poller.sweep_while(lambda: math.inf)
    assert submitted.store.sweep_leases == {}


@pytest.mark.parametrize("status", [-1, -2])
def test_negative_status_ends_the_job_as_generation_failed_at_once(submitted, status) -> None:
    submitted.provider.records = [submitted.record(status=status, error_code="PUBLIC_ERROR_POLICY_VIOLATION")]
    assert submitted.poller.sweep().outcomes == {Outcome.FAILED: 1}
    [event] = submitted.publisher.finals
    assert event.error.code == "generation_failed"
    assert "PUBLIC_ERROR_POLICY_VIOLATION" in event.error.message
    assert f"status {status}" in event.error.message


def test_a_fault_in_the_lines_upkeep_never_stops_the_sweep(submitted) -> None:
    def unreadable() -> object:
        raise ConnectionError("the places item could not be read")

    submitted.waiting.places = unreadable
    submitted.provider.records = [submitted.record(status=1, status_percentage=40)]
    submitted.poller.tend_line()  # logged and counted, not raised
    assert submitted.poller.sweep().outcomes == {Outcome.RUNNING: 1}
    assert submitted.metrics.counts["LineUpkeepFailed[step=fill]"] == 1


def test_a_stale_index_copy_is_recognised_and_the_sweep_never_spins(submitted) -> None:
    stale = submitted.store.get("ad-1")  # as the index still shows it after it was checked
    store_due = submitted.store.due
    submitted.store.due = lambda shard, now, limit, start=None: replace(
        store_due(shard, now, limit, start), jobs=[stale]
    )
    submitted.store.next_due = lambda shard: stale.next_check_at  # not after now, whatever now is
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        submitted.clock.sleep(seconds)

    outcomes = replace(submitted.poller, sleep=sleep).sweep_while(lambda: math.inf)
    assert submitted.provider.status_calls == ["sora_abc"]  # checked once, the stale copy never again
    assert outcomes == Counter({Outcome.RUNNING: 1})
    assert slept
    assert min(slept) >= 1  # each wait moves time forward
    assert sum(slept) <= submitted.poller.window.total_seconds() + 1
    assert submitted.metrics.counts["StaleIndexCopies"] >= 1


def test_a_poll_that_dies_holds_its_shards_minutes_not_its_whole_timeout(submitted) -> None:
    def dies(*_: object) -> object:
        raise SystemExit("the container died")

    status, submitted.provider.status = submitted.provider.status, dies
    submitted.store.end_sweep = lambda shard, holder: None  # a dead invocation gives nothing back
    with pytest.raises(SystemExit):
        submitted.poller.sweep_while(lambda: 290.0)  # a five-minute function, just begun
    submitted.provider.status = status
    [(_, until)] = submitted.store.sweep_leases.values()
    assert until == submitted.clock.now + submitted.policy.sweep_lease


def test_a_long_sweep_renews_its_leases_as_it_goes(world) -> None:
    poller = replace(world.poller, window=timedelta(minutes=4), sleep=world.clock.sleep)
    renewals: list[datetime] = []
    take_sweep = world.store.take_sweep

    def taken(shard: int, holder: str, until: datetime, now: datetime) -> bool:
        renewals.append(until)
        return take_sweep(shard, holder, until, now)

    world.store.take_sweep = taken
    for number in range(4):  # a job coming due each minute keeps the invocation sweeping
        body = json.dumps({"request_id": f"ad-{number}", "prompt": f"a fox, take {number}"})
        world.submitter.handle(InboundMessage(f"m-{number}", body))
        job = world.store.get(f"ad-{number}")
        world.store.jobs[job.request_id] = job.check_again(job.updated_at, world.clock.now + timedelta(minutes=number))
    poller.sweep_while(lambda: math.inf)
    assert len(renewals) > 1
    assert max(renewals) > renewals[0]


def test_a_video_address_on_a_record_still_processing_is_not_done(submitted) -> None:
    # Grok records may carry an address while the status is still 1.
    address = "https://cdn.geminigen.ai/v/early.mp4"
    submitted.provider.records = [submitted.record(status=1, status_percentage=90, video_url=address)]
    assert submitted.poller.sweep().outcomes == {Outcome.RUNNING: 1}
    assert submitted.archive_queue.sent == []
