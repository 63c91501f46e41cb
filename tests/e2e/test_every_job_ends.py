"""Every job ends: a refused address, a copy slower than the watchdog's minute, a poll whose
checks all fail. Each through the functions, with moto as AWS and the simulator as provider."""

import threading
import time
from datetime import timedelta

import boto3
import pytest

from sora_relay import wiring
from sora_relay_tools.local.functions import LocalContext
from sora_relay_tools.simulator import Fault, ManualClock

from ..support.aws import SECRET_NAME, lambda_context
from ..support.local import SCHEDULE, run_until_events


def test_video_whose_address_refuses_while_its_record_offers_it_is_copied_once_it_works(
    stack, simulator, functions
) -> None:
    # Never ended expired while the provider's record still offers an address: tried again,
    # from the address the record gives then (three refusals and a later invocation: the unit
    # and integration tiers; here, one refusal, end to end).
    simulator.inject("media", Fault(status=403))
    started = time.monotonic()
    stack.send_request({"request_id": "refused-1", "prompt": "a lighthouse at dusk"})
    [event] = run_until_events(stack, functions, 1, timeout=60)
    assert event["body"]["event"] == "video.completed"
    assert time.monotonic() - started < 60
    assert len(simulator.submissions()) == 1


def test_copy_outlasting_the_watchdogs_minute_completes_and_is_announced_once(stack, simulator, functions) -> None:
    """Twenty minutes before expired_at the watchdog is due every minute; a 75 s copy (a few
    seconds here, while the functions' clock jumps 75 s and the poll runs) must not be broken."""
    clock = ManualClock()
    wiring.reset(clock=clock)
    simulator.expire_after = timedelta(minutes=20)
    stack.send_request({"request_id": "slow-copy", "prompt": "a glacier calving"})
    assert stack.deliver(functions["submit"]) == []
    handoff = _poll_until_handed_off(stack, functions, clock)
    simulator.inject("media", Fault(delay=2.0))
    copy = threading.Thread(target=functions["archive"], args=(handoff, lambda_context()))
    copy.start()
    # Until the copy has its lease (then it waits 2 s for the first byte), however slow the machine.
    deadline = time.monotonic() + 30
    while "lease_until" not in stack.job("slow-copy"):
        assert time.monotonic() < deadline, "the copy never took its lease"
        time.sleep(0.02)
    clock.advance(timedelta(seconds=75))
    functions["poll"](SCHEDULE, lambda_context())
    copy.join()
    stack.delete(stack.archive_queue_url, handoff, [])
    clock.advance(timedelta(minutes=5))
    functions["poll"](SCHEDULE, lambda_context())
    assert stack.receive(stack.archive_queue_url)["Records"] == []  # the watchdog sent nothing again
    assert [event["body"]["event"] for event in stack.events()] == ["video.completed"]
    assert stack.job("slow-copy")["state"]["S"] == "archived"


def _poll_until_handed_off(stack, functions, clock: ManualClock) -> dict:
    for _ in range(20):
        clock.advance(timedelta(seconds=30))
        functions["poll"](SCHEDULE, lambda_context())
        handoff = stack.receive(stack.archive_queue_url, visibility_timeout=900)
        if handoff["Records"]:
            return handoff
    pytest.fail("the video was never handed to the archiver")


def test_poll_whose_checks_all_raise_tries_each_job_once(stack, functions, monkeypatch, captured_logs) -> None:
    for number in range(3):
        stack.send_request({"request_id": f"doomed-{number}", "prompt": f"a storm, take {number}"})
    assert stack.deliver(functions["submit"]) == []
    boto3.client("secretsmanager").delete_secret(SecretId=SECRET_NAME, ForceDeleteWithoutRecovery=True)
    monkeypatch.setenv("POLL_SWEEP_WINDOW_SECONDS", "50")
    wiring.rebuild()  # the new window, and no cached key
    time.sleep(1.1)  # past PollIntervalSeconds: every job is due
    started = time.monotonic()
    functions["poll"](SCHEDULE, LocalContext(function_name="poll", timeout_seconds=120))
    failed_checks = [line for line in captured_logs.getvalue().splitlines() if "checking a job failed" in line]
    assert len(failed_checks) == 3  # one check per job, then no sweep again in the invocation
    assert time.monotonic() - started < 10
    assert stack.events() == []
    for number in range(3):
        assert stack.job(f"doomed-{number}")["state"]["S"] == "submitted"
