"""The local stack: the real template deployed into moto, the handlers driven as Lambda would."""

import io
import json
from pathlib import Path

import boto3
from rich.console import Console

from sora_relay_tools.local.run import PlannedRequest, run
from sora_relay_tools.simulator import Fault


def request(expect: str, **body: object) -> PlannedRequest:
    return PlannedRequest(str(body.get("request_id", "?")), json.dumps(body), expect)


def test_requests_end_as_expected_with_videos_in_s3_and_out(local_stack, module_simulator, tmp_path: Path) -> None:
    planned = [
        request("video.completed", request_id="local-ok", prompt="a fox in the snow"),
        request("video.failed", request_id="local-refused", prompt="[fail] a storm"),
        PlannedRequest("invalid", '{"request_id": "local-invalid", "prompt": ""}', "video.failed"),
    ]
    tracked = run(local_stack, planned, out_dir=tmp_path, timeout=30, console=Console(file=io.StringIO()))
    assert [job.problems for job in tracked] == [[], [], []]
    assert [job.as_expected for job in tracked] == [True, True, True]
    ok, refused, invalid = (job.event for job in tracked)
    assert refused["error"]["code"] == "generation_failed"
    assert invalid["error"]["code"] == "invalid_request"
    made = module_simulator.video_bytes(module_simulator.generations[ok["provider"]["uuid"]])
    stored = boto3.client("s3").get_object(Bucket=local_stack.outputs["ArchiveBucketName"], Key="videos/local-ok.mp4")
    assert stored["Body"].read() == made
    assert (tmp_path / "local-ok.mp4").read_bytes() == made
    assert ok["video"]["uri"] == f"s3://{local_stack.outputs['ArchiveBucketName']}/videos/local-ok.mp4"


def test_completed_video_has_the_providers_thumbnail_beside_it(local_stack, module_simulator, tmp_path) -> None:
    planned = [request("video.completed", request_id="local-thumbnail", prompt="a heron")]
    [job] = run(local_stack, planned, out_dir=tmp_path, timeout=30, console=Console(file=io.StringIO()))
    assert job.as_expected
    thumbnail = job.event["thumbnail"]
    assert thumbnail["key"] == "videos/local-thumbnail.thumbnail.png"
    stored = boto3.client("s3").get_object(Bucket=thumbnail["bucket"], Key=thumbnail["key"])
    [generation] = module_simulator.submissions(prompt="a heron")
    assert stored["Body"].read() == module_simulator.thumbnail_bytes(generation)
    assert (stored["ContentType"], thumbnail["content_type"]) == ("image/png", "image/png")


def test_completed_event_states_what_the_generation_used(local_stack, tmp_path) -> None:
    planned = [request("video.completed", request_id="local-cost", prompt="a crane", model="sora-2-pro")]
    [job] = run(local_stack, planned, out_dir=tmp_path, timeout=30, console=Console(file=io.StringIO()))
    assert job.as_expected
    assert (job.event["provider"]["estimated_credit"], job.event["provider"]["used_credit"]) == (75, 75)


def test_each_job_announced_as_submitted_before_its_final_event(local_stack, tmp_path) -> None:
    planned = [request("video.completed", request_id="local-announced", prompt="an owl")]
    [job] = run(local_stack, planned, out_dir=tmp_path, timeout=30, console=Console(file=io.StringIO()))
    assert job.problems == []
    [submitted] = job.interim
    assert (submitted["event"], submitted["provider"]["uuid"]) == ("video.submitted", job.event["provider"]["uuid"])


def test_functions_run_with_their_deployed_configuration(local_stack) -> None:
    functions = local_stack.deployed.functions
    assert set(functions) == {
        "SubmitFunction",
        "PollFunction",
        "SweepFunction",
        "ArchiveFunction",
        "ApiFunction",
        "WebhookFunction",
    }
    assert {f.handler for f in functions.values()} == {"app.handler"}
    table = local_stack.outputs["JobsTableName"]
    assert all(f.environment["JOBS_TABLE_NAME"] == table for f in functions.values())
    assert [t.function for t in local_stack.deployed.schedules] == ["PollFunction"]


def test_failed_record_comes_back_after_the_delay_its_handler_set(local_stack, module_simulator, tmp_path) -> None:
    module_simulator.inject("submit", Fault(status=429, retry_after="1"))
    before = local_stack.driver.invocations["SubmitFunction"]
    planned = [request("video.completed", request_id="local-retried", prompt="a lighthouse")]
    [job] = run(local_stack, planned, out_dir=tmp_path, timeout=30, console=Console(file=io.StringIO()))
    assert job.as_expected
    assert len(module_simulator.submissions(prompt="a lighthouse")) == 1
    assert local_stack.driver.invocations["SubmitFunction"] - before >= 2
