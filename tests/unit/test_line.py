"""The line: at most MaxActiveGenerations generations run at once; the rest wait in the jobs
table, start by priority then arrival as places free, and waiting spends nothing."""

import json
from datetime import timedelta

from sora_relay.domain.jobs import JobState
from sora_relay.domain.policy import Policy
from sora_relay.domain.provider import MaybeTaken, RetryLater
from sora_relay.services.poll.outcome import Outcome
from sora_relay.services.submit.messages import Done, InboundMessage

from ..support.fakes import TakenThenLost, World


def arrive(world: World, request_id: str, priority: str = "normal", **fields: object) -> object:
    body = {"request_id": request_id, "prompt": f"a fox number {request_id}", "priority": priority, **fields}
    return world.submitter.handle(InboundMessage(f"m-{request_id}", json.dumps(body)))


def finish(world: World, request_id: str) -> None:
    """The provider finishes the request's generation, and a sweep sees it."""
    job = world.store.get(request_id)
    world.clock.advance(world.policy.poll_interval)
    world.provider.records = [world.record(uuid=job.provider.uuid, status=2, video_url="https://x.geminigen.ai/v.mp4")]
    world.store.jobs[request_id] = job.check_again(world.clock.now, world.clock.now)
    outcomes = world.poller.sweep().outcomes
    assert outcomes[Outcome.HANDED_OFF] == 1


def test_requests_beyond_the_places_wait_without_a_provider_call() -> None:
    world = World(places=2)
    for number in range(5):
        assert arrive(world, f"r{number}") == Done()
    assert [r.prompt for r in world.provider.submitted] == ["a fox number r0", "a fox number r1"]
    waiting = [job.request_id for job in world.store.jobs.values() if job.waiting]
    assert waiting == ["r2", "r3", "r4"]
    assert world.request_queue.resent == []  # waiting is not a message


def test_waiting_reserves_no_credits() -> None:
    world = World(places=1, daily_credit_budget=1000)
    world.provider.outcomes = []
    arrive(world, "r0")
    spent = world.ledger.day(world.clock.now.date()).spent
    arrive(world, "r1")
    assert world.ledger.day(world.clock.now.date()).spent == spent


def test_a_finished_generation_starts_the_next_in_line_at_once() -> None:
    world = World(places=1)
    arrive(world, "r0")
    arrive(world, "r1")
    finish(world, "r0")
    assert world.deliver_starts() == ["r1"]
    assert world.store.get("r1").state is JobState.SUBMITTED


def test_high_priority_starts_before_earlier_normal_and_low() -> None:
    world = World(places=1)
    arrive(world, "running")
    arrive(world, "low", "low")
    arrive(world, "normal-1")
    arrive(world, "high", "high")
    arrive(world, "normal-2")
    order = []
    for _ in range(4):
        finish(world, order[-1] if order else "running")
        order += world.deliver_starts()
    assert order == ["high", "normal-1", "normal-2", "low"]


def test_a_repeat_of_a_waiting_requests_message_changes_nothing() -> None:
    world = World(places=1)
    arrive(world, "r0")
    arrive(world, "r1")
    before = world.store.get("r1")
    assert arrive(world, "r1") == Done()
    assert world.store.get("r1") == before


def test_a_capacity_refusal_puts_the_request_back_at_the_head_and_holds_the_line_to_its_places() -> None:
    world = World(places=3)
    arrive(world, "r0")
    world.provider.outcomes = [RetryLater("MAX_PROCESSING_VIDEO_EXCEEDED: the plan runs 1 at once")]
    arrive(world, "r1")  # refused: back in line, ahead of r2
    arrive(world, "r2")
    assert world.store.get("r1").waiting
    assert world.store.get("r2").waiting
    assert world.waiting.state.limit(3, world.clock.now) == 1  # as many as held when refused
    world.clock.advance(world.waiting.state.resume_at - world.clock.now)
    world.poller.tend_line()
    assert world.deliver_starts() == []  # the learned limit: one place, r0's
    finish(world, "r0")
    assert world.deliver_starts() == ["r1"]
    assert world.metrics.counts["CapacityRefusals"] == 1


def test_a_refused_request_spends_no_credits_and_keeps_no_place() -> None:
    world = World(places=2, daily_credit_budget=1000)
    world.provider.outcomes = [RetryLater("HTTP 429")]
    arrive(world, "r0")
    assert world.ledger.day(world.clock.now.date()).spent == 0
    assert world.waiting.state.holder_ids == frozenset()


def test_a_request_that_never_starts_ends_at_the_lines_bound_saying_it_cost_nothing() -> None:
    world = World(places=1)
    arrive(world, "r0")
    arrive(world, "r1")
    world.clock.advance(world.policy.max_line)
    world.poller.sweep()
    [event] = [e for e in world.publisher.finals if e.request_id == "r1"]
    assert event.error.code == "timed_out"
    assert "never started" in event.error.message
    assert "nothing was charged" in event.error.message
    assert not world.store.get("r1").waiting


def test_max_wait_counts_from_the_start_not_from_arrival() -> None:
    world = World(places=1)
    arrive(world, "r0")
    arrive(world, "r1")
    world.clock.advance(world.policy.max_wait + timedelta(minutes=1))
    finish(world, "r0")
    world.deliver_starts()
    world.clock.advance(world.policy.poll_interval)
    world.provider.records = [world.record(uuid=world.store.get("r1").provider.uuid, status=1)]
    world.poller.sweep()
    assert world.store.get("r1").state is JobState.SUBMITTED


def test_a_waiting_request_is_canceled_and_never_started() -> None:
    world = World(places=1)
    arrive(world, "r0")
    arrive(world, "r1")
    world.canceler.cancel("r1")
    finish(world, "r0")
    assert world.deliver_starts() == []
    assert len(world.provider.submitted) == 1


def test_a_place_whose_holder_died_before_starting_it_is_freed_by_the_poll() -> None:
    world = World(places=1)
    arrive(world, "r0")
    world.waiting.free_place(world.store.get("r0").place)
    world.waiting.take_place(f"ghost@{world.clock.now.isoformat()}", 1, world.clock.now)  # then its taker died
    arrive(world, "r1")
    assert world.store.get("r1").waiting
    world.clock.advance(world.policy.start_watchdog)
    world.poller.tend_line()
    assert world.deliver_starts() == ["r1"]
    assert world.metrics.counts["PlacesRecovered"] == 1


def test_a_started_request_whose_message_was_lost_is_sent_again_by_a_sweep() -> None:
    world = World(places=1)
    arrive(world, "r0")
    arrive(world, "r1")
    finish(world, "r0")
    world.request_queue.resent.clear()  # the message that starts r1 is lost
    world.clock.advance(world.policy.start_watchdog)
    world.poller.sweep()
    assert world.deliver_starts() == ["r1"]
    assert world.store.get("r1").state is JobState.SUBMITTED


def test_a_place_is_never_given_twice_when_a_start_races_another() -> None:
    world = World(places=1)
    arrive(world, "r0")
    arrive(world, "r1")
    arrive(world, "r2")
    world.waiting.free_place(world.store.get("r0").place)
    world.line.fill()
    world.line.fill()  # a second invocation, at the same moment
    assert [request_id for request_id, _ in world.request_queue.resent] == ["r1"]
    assert world.waiting.state.holder_ids == frozenset({"r1"})


def test_the_line_is_reported_by_priority_with_its_oldest_wait() -> None:
    world = World(places=1)
    arrive(world, "r0")
    arrive(world, "r1", "high")
    world.clock.advance(timedelta(minutes=3))
    arrive(world, "r2", "low")
    world.poller.tend_line()
    counts = world.metrics.counts
    assert (counts["LineLength[priority=high]"], counts["LineLength[priority=low]"]) == (1, 1)
    assert counts["OldestWaiting"] == 180
    assert (counts["PlacesHeld"], counts["PlacesLimit"]) == (1, 1)


def test_a_request_starts_at_once_when_nobody_waits_its_place_saved_with_the_start() -> None:
    world = World(places=2)
    saves = []
    save = world.store.save
    world.store.save = lambda job: (saves.append(job), save(job))[1]  # type: ignore[method-assign]
    arrive(world, "r0")
    assert not any(job.waiting for job in saves)  # never saved in line
    started, attempt, submitted = saves
    assert (started.placed_at, started.attempt_started_at) == (world.clock.now, None)  # who owns the place
    assert world.waiting.state.holders == frozenset({started.place})
    assert attempt.attempt_started_at is not None
    assert submitted.attempt_started_at is None


def test_a_place_held_by_a_live_claim_is_not_healed_away() -> None:
    world = World(places=1)

    def slow_read_while_the_poll_runs() -> None:
        world.clock.advance(world.policy.start_watchdog + timedelta(seconds=1))
        world.poller.tend_line()

    world.files.meanwhile = slow_read_while_the_poll_runs
    arrive(world, "r0", files=["s3://in/ref.png"])
    assert world.metrics.counts["PlacesRecovered"] == 0
    assert world.store.get("r0").state is JobState.SUBMITTED


def test_an_acceptance_keeps_the_pause_of_a_refusal_that_came_after_it() -> None:
    world = World(places=3)
    seen = world.waiting.places().refusals
    world.waiting.slow_down(3, world.clock.now, world.clock.now + timedelta(minutes=1), "HTTP 429")  # meanwhile
    world.waiting.speed_up(seen)  # the acceptance saw no refusal
    assert world.waiting.places().paused(world.clock.now)


def test_a_refused_request_frees_only_its_own_place_never_one_a_fill_gave_it_since() -> None:
    world = World(places=2)
    free_place = world.waiting.free_place

    def another_fill_first(place: str) -> None:
        world.clock.advance(timedelta(seconds=1))
        world.line.fill()  # another invocation's fill, between the refusal's save and its free
        free_place(place)

    world.waiting.free_place = another_fill_first
    world.provider.outcomes = [RetryLater("HTTP 429")]
    arrive(world, "r0")
    restarted = world.store.get("r0")
    assert restarted.place is not None  # started again, with a place of its own
    assert world.waiting.state.holders == frozenset({restarted.place})


def test_an_out_of_credit_refusal_learns_no_limit_on_places() -> None:
    world = World(places=3)
    arrive(world, "r0")
    world.provider.outcomes = [RetryLater("NOT_ENOUGH_CREDIT: top up", account_refused=True)]
    arrive(world, "r1")
    assert world.waiting.state.limit(3, world.clock.now) == 3  # a top-up finds every place
    assert world.waiting.state.paused(world.clock.now)  # but starts wait out the backoff


def test_the_lines_one_bound_counts_from_arrival_and_a_twin_met_late_never_ends_a_request_at_once() -> None:
    world = World(places=2, policy=Policy(max_line=timedelta(hours=100)))
    world.provider.outcomes = [TakenThenLost()]
    arrive(world, "r0", prompt="a fox")  # its attempt in doubt
    arrive(world, "twin", prompt="a fox")  # waits in line for it
    world.clock.advance(timedelta(hours=49))
    world.poller.tend_line()
    assert world.publisher.finals == []
    assert world.store.get("twin").waiting
    world.minute(3)  # r0's generation is found in the history: the twin goes
    assert world.store.get("twin").state is JobState.SUBMITTED
    assert len(world.provider.submitted) == 2


def test_a_waiting_twin_fetches_no_references_and_sends_no_message() -> None:
    world = World(places=2)
    body = {"model": "kling-video-2-6", "ref_images": ["s3://in/a.png"]}
    world.provider.outcomes = [MaybeTaken("the provider answered HTTP 504")]
    arrive(world, "first", prompt="a fox in a field", **body)
    arrive(world, "twin", prompt="a fox in a field", **body)
    fetched = list(world.files.fetched)
    for _ in range(5):
        world.clock.advance(timedelta(seconds=10))
        world.poller.tend_line()
    assert world.files.fetched == fetched == ["s3://in/a.png"]
    assert world.request_queue.resent == []
    assert "waiting for request first" in world.store.get("twin").held
