"""The `sora-relay` command, run as people run it (a process of its own) against the local stack."""

import contextlib
import json
import subprocess  # nosec B404
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx

from sora_relay.domain.webhooks import shown_secret
from sora_relay_tools.local.stack import LocalStack

from ..support.cli import cli, command, environment


@contextlib.contextmanager
def listening(local_stack: LocalStack, *arguments: str) -> Iterator[subprocess.Popen[str]]:
    """`sora-relay events ARGUMENTS` in a process of its own, once it has subscribed."""
    sns = local_stack.client("sns")
    topic = local_stack.outputs["CompletionTopicArn"]

    def subscriptions() -> int:
        return len(sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"])

    before = subscriptions()
    listener = subprocess.Popen(  # noqa: S603  # nosec B603  # our own interpreter, fixed arguments
        command("events", *arguments), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment()
    )
    try:
        deadline = time.monotonic() + 30
        while subscriptions() == before:
            assert time.monotonic() < deadline, "the listener did not subscribe"
            time.sleep(0.1)
        yield listener
    finally:
        listener.kill()


def event_queues(local_stack: LocalStack) -> list[str]:
    urls = local_stack.client("sqs").list_queues().get("QueueUrls", [])
    return [url for url in urls if "sora-relay-events-" in url]


def test_submit_wait_download_leaves_the_mp4(local_stack, module_simulator, tmp_path: Path) -> None:
    done = cli("submit", "a lighthouse at dawn", "--request-id", "cli-ok", "--wait", "--download", str(tmp_path))
    assert done.returncode == 0, done.stderr
    bucket = local_stack.outputs["ArchiveBucketName"]
    assert done.stdout.strip() == f"s3://{bucket}/videos/cli-ok.mp4"
    generation = module_simulator.submissions("a lighthouse at dawn")[-1]
    assert (tmp_path / "cli-ok.mp4").read_bytes() == module_simulator.video_bytes(generation)


def test_submit_with_a_fallback_completes_on_it_when_the_first_model_is_refused_at_no_cost(
    local_stack, module_simulator
) -> None:
    prompt = "a choir sings in a cave [audio-filtered]"
    arguments = ("--model", "veo-3.1-fast", "--fallback", "grok-3", "--request-id", "cli-fallback")
    done = cli("submit", prompt, *arguments, "--wait", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["event"] == "video.completed"
    status = json.loads(cli("status", "cli-fallback", "--json").stdout)
    assert (status["model"], [attempt["model"] for attempt in status["earlier_attempts"]]) == (
        "grok-3",
        ["veo-3.1-fast"],
    )
    assert status["delivered"]["matches_request"] is True
    assert [g.model for g in module_simulator.submissions(prompt)] == ["veo-3.1-fast", "grok-3"]


def test_submit_without_wait_prints_the_request_id(local_stack) -> None:
    done = cli("submit", "a quiet harbour", "--model", "sora-2-pro", "--meta", "campaign=spring", "--json")
    assert done.returncode == 0, done.stderr
    request_id = json.loads(done.stdout)["request_id"]
    finished = cli("submit", "ignored", "--request-id", request_id, "--wait", "--json")  # same id: no new job
    assert json.loads(finished.stdout)["event"] == "video.completed"
    status = json.loads(cli("status", request_id, "--json").stdout)
    assert (status["model"], status["metadata"], status["state"]) == ("sora-2-pro", {"campaign": "spring"}, "archived")


def test_submit_uploads_a_local_file_to_the_input_location(local_stack, module_simulator, tmp_path: Path) -> None:
    reference = tmp_path / "style.png"
    reference.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    done = cli("submit", "in this style", "--file", str(reference), "--request-id", "cli-file", "--wait", "--json")
    assert done.returncode == 0, done.stderr
    files = local_stack.job("cli-file")["request"]
    assert json.loads(files)["files"][0].startswith(local_stack.outputs["InputLocation"])
    assert json.loads(done.stdout)["event"] == "video.completed"


def test_invalid_request_exits_2_and_is_never_sent(local_stack) -> None:
    done = cli("submit", "   ", "--request-id", "cli-blank")
    assert done.returncode == 2
    assert "prompt" in done.stderr
    assert local_stack.job("cli-blank") is None


def test_failed_generation_exits_1_with_its_error_code(local_stack) -> None:
    done = cli("submit", "[fail] a storm", "--request-id", "cli-fails", "--wait", "--json")
    assert done.returncode == 1
    assert json.loads(done.stdout)["error"]["code"] == "generation_failed"


def test_submit_many_of_twenty_lines_completes_all(local_stack, tmp_path: Path) -> None:
    lines = [json.dumps({"request_id": f"many-{n:02d}", "prompt": f"scene {n}"}) for n in range(20)]
    requests = tmp_path / "requests.jsonl"
    requests.write_text("\n".join(lines) + "\n")
    done = cli("submit-many", str(requests), "--wait", "--json", "--download", str(tmp_path / "videos"))
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert sorted(result["request_id"] for result in results) == [f"many-{n:02d}" for n in range(20)]
    assert {result["event"] for result in results} == {"video.completed"}
    assert len(list((tmp_path / "videos").glob("*.mp4"))) == 20


def test_submit_many_names_bad_lines_and_sends_the_rest(local_stack, tmp_path: Path) -> None:
    requests = tmp_path / "requests.jsonl"
    requests.write_text(
        '{"request_id": "many-good", "prompt": "fine"}\nnot json\n{"prompt": "x", "reslution": "large"}\n'
    )
    done = cli("submit-many", str(requests), "--json")
    assert done.returncode == 1
    summary = json.loads(done.stdout)
    assert summary["sent"] == ["many-good"]
    assert [rejected["line"] for rejected in summary["rejected"]] == [2, 3]
    assert "reslution" in summary["rejected"][1]["reason"]


def test_events_follow_prints_an_event_and_removes_its_queue(local_stack) -> None:
    arguments = ("--follow", "--count", "1", "--json", "--finals", "--filter", "request_id=cli-event-*")
    with listening(local_stack, *arguments) as events:
        assert cli("submit", "a kite", "--request-id", "cli-other").returncode == 0
        assert cli("submit", "a kite", "--request-id", "cli-event-1").returncode == 0
        stdout, _ = events.communicate(timeout=60)
    assert events.returncode == 0
    event = json.loads(stdout)
    assert (event["event"], event["request_id"]) == ("video.completed", "cli-event-1")
    assert event_queues(local_stack) == []


def test_events_filter_on_event_shows_only_failures(local_stack) -> None:
    with listening(local_stack, "--follow", "--count", "1", "--json", "--filter", "event=video.failed") as events:
        assert cli("submit", "a calm sea", "--request-id", "cli-calm", "--wait").returncode == 0
        assert cli("submit", "[fail] a storm", "--request-id", "cli-storm").returncode == 0
        stdout, _ = events.communicate(timeout=60)
    event = json.loads(stdout)
    assert (event["event"], event["request_id"]) == ("video.failed", "cli-storm")


def test_status_of_an_unknown_job_exits_3(local_stack) -> None:
    done = cli("status", "no-such-job")
    assert done.returncode == 3
    assert "no-such-job" in done.stderr


def test_unknown_stack_exits_3(local_stack) -> None:
    done = cli("status", "anything", "--stack", "not-a-stack")
    assert done.returncode == 3
    assert "not-a-stack" in done.stderr


def test_ls_lists_the_jobs_of_one_state(local_stack) -> None:
    assert cli("submit", "[fail] hail", "--request-id", "cli-ls-failed", "--wait").returncode == 1
    assert cli("submit", "sun", "--request-id", "cli-ls-ok", "--wait").returncode == 0
    failed = [job["request_id"] for job in json.loads(cli("ls", "--state", "failed", "--since", "1h", "--json").stdout)]
    assert "cli-ls-failed" in failed
    assert "cli-ls-ok" not in failed


def test_url_is_a_presigned_link_to_the_video(local_stack, module_simulator) -> None:
    assert cli("submit", "a meadow", "--request-id", "cli-url", "--wait").returncode == 0
    link = json.loads(cli("url", "cli-url", "--expires-in", "60", "--json").stdout)["url"]
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in link  # SigV4: buckets since 2020 refuse SigV2's links
    assert "AWSAccessKeyId" not in link
    generation = module_simulator.submissions("a meadow")[-1]
    assert httpx.get(link).content == module_simulator.video_bytes(generation)


def test_download_of_an_unfinished_job_exits_3(local_stack) -> None:
    assert cli("submit", "[fail] fog", "--request-id", "cli-no-video", "--wait").returncode == 1
    done = cli("download", "cli-no-video")
    assert done.returncode == 3
    assert "generation_failed" in done.stderr


def test_dlq_redrive_brings_a_request_back_under_its_first_message_id(local_stack) -> None:
    sqs = boto3.client("sqs")
    dead_letters = local_stack.outputs["RequestDeadLetterQueueUrl"]
    message_id = sqs.send_message(QueueUrl=dead_letters, MessageBody=json.dumps({"prompt": "again"}))["MessageId"]
    listed = {queue["name"]: queue["depth"] for queue in json.loads(cli("dlq", "ls", "--json").stdout)}
    assert listed == {"requests": 1, "archive": 0, "sweeps": 0, "webhooks": 0}
    moved = cli("dlq", "redrive", "requests", "--json")
    assert json.loads(moved.stdout) == {"moved": {"requests": 1}}
    finished = cli("submit", "ignored", "--request-id", message_id, "--wait", "--json")
    assert json.loads(finished.stdout)["event"] == "video.completed"
    assert json.loads(cli("status", message_id, "--json").stdout)["prompt"] == "again"


def test_submit_of_a_veo_request_with_its_familys_options_completes(local_stack, module_simulator) -> None:
    done = cli(
        "submit", "a lighthouse at dawn", "--model", "veo-3.1-fast", "--resolution", "720p",
        "--aspect-ratio", "16:9", "--request-id", "cli-veo", "--wait", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["event"] == "video.completed"
    job = local_stack.job("cli-veo")
    request = json.loads(job["request"])
    assert (request["family"], request["resolution"], request["aspect_ratio"]) == ("veo", "720p", "16:9")
    generation = module_simulator.generations[json.loads(job["provider"])["uuid"]]
    assert (generation.family, generation.fields["model"]) == ("veo", "veo-3.1-fast")


def test_submit_with_an_option_the_model_does_not_take_is_refused_before_sending(local_stack) -> None:
    done = cli("submit", "a lighthouse at dawn", "--model", "veo-3.1", "--resolution", "small")
    assert done.returncode == 2
    assert "resolution: 'small' is not a value veo-3.1 takes (it takes 720p, 1080p)" in done.stderr


def test_models_lists_the_catalogue() -> None:
    done = cli("models", "--json")
    assert done.returncode == 0, done.stderr
    models = {model["model"]: model for model in json.loads(done.stdout)["models"]}
    assert {"sora-2", "veo-3.1-fast", "kling-video-2-6", "seedance-2", "grok-3"} <= set(models)
    veo = models["veo-3.1-fast"]
    assert (veo["family"], veo["fields"]["resolution"]["default"], veo["references"]) == (
        "veo",
        "720p",
        {"field": "ref_images", "most": 3},
    )
    assert not models["sora-2"]["extendable"]


def test_piped_plain_output_holds_ids_uris_and_digests_whole(local_stack) -> None:
    request_id = "5f0c3d2e-9b7a-4c1e-8f6d-2a1b3c4d5e6f-with-a-long-tail"
    assert cli("submit", "a harbour", "--request-id", request_id, "--wait").returncode == 0
    video = json.loads(cli("status", request_id, "--json").stdout)["video"]
    status = cli("status", request_id, columns=None).stdout
    assert video["uri"] in status
    assert video["sha256"] in status
    assert request_id in cli("ls", columns=None).stdout


def test_keys_are_made_listed_without_their_secret_and_revoked(local_stack) -> None:
    made = cli("keys", "create", "cli-key", "--json")
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)["key"]
    api = local_stack.outputs["ApiUrl"]
    assert httpx.get(f"{api}/videos", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    listed = json.loads(cli("keys", "list", "--json").stdout)
    assert [entry["name"] for entry in listed if entry["name"] == "cli-key"] == ["cli-key"]
    assert key not in json.dumps(listed)
    assert cli("keys", "create", "cli-key").returncode != 0  # a name is never used twice
    assert cli("keys", "revoke", "cli-key").returncode == 0
    assert httpx.get(f"{api}/videos", headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_webhooks_secret_prints_the_stacks_signing_secret(local_stack) -> None:
    printed = cli("webhooks", "secret", "--json")
    assert printed.returncode == 0, printed.stderr
    stored = local_stack.client("secretsmanager").get_secret_value(SecretId=local_stack.outputs["WebhookSecretArn"])
    assert json.loads(printed.stdout)["secret"] == shown_secret(stored["SecretString"].encode())
