"""What the command prints of users' and the provider's text: shown literally, never obeyed."""

import io
import json

import pytest
from rich.console import Console

from sora_relay.domain.events import ErrorCode, EventError, EventType, VideoEvent
from sora_relay_tools.cli import submitting, watching
from sora_relay_tools.cli.local import instructions, output_console

HOSTILE = [
    "content policy [/] violated",
    "see [link=https://evil.example]your account[/link]",
    "[bold red]URGENT[/]",
    "trailing backslash \\",
    "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\",
    "\x1b[2J\x1b[Hscreen cleared",
    "\u202egnp.exe",
]


def failed_event(message: str) -> VideoEvent:
    return VideoEvent(
        event=EventType.FAILED,
        event_id="r-1:video.failed",
        request_id="r-1",
        occurred_at="2026-11-25T10:00:00Z",
        error=EventError(code=ErrorCode.GENERATION_FAILED, message=message),
    )


def rendered(text: str) -> str:
    buffer = io.StringIO()
    Console(file=buffer, force_terminal=False, width=400).print(text)
    return buffer.getvalue()


@pytest.mark.parametrize("message", HOSTILE)
def test_event_line_shows_the_error_message_without_markup_or_control_sequences(message: str) -> None:
    shown = rendered(watching._one_line(failed_event(message)))
    assert "\x1b" not in shown
    assert "\u202e" not in shown
    assert message.replace("\x1b", "\\x1b").replace("\u202e", "\\u202e") in shown


@pytest.mark.parametrize("message", HOSTILE)
def test_failed_result_of_submit_wait_prints_the_message_literally(message: str, monkeypatch) -> None:
    buffer = io.StringIO()
    monkeypatch.setattr(submitting, "err", Console(file=buffer, force_terminal=False, width=400))
    submitting._print_result({"request_id": "r-1", "error": {"code": "generation_failed", "message": message}})
    assert "\x1b" not in buffer.getvalue()
    assert message.replace("\x1b", "\\x1b").replace("\u202e", "\\u202e") in buffer.getvalue()


API_URL = "http://127.0.0.1:4600/v1"
KEY = "sr-local-key"


def test_local_up_instructions_give_the_http_apis_base_and_a_key_that_curl_uses() -> None:
    outputs = {"RequestQueueUrl": "http://127.0.0.1:4599/q", "ApiUrl": API_URL}
    lines = instructions("http://127.0.0.1:4599", outputs, KEY)
    [curl] = [line for line in lines if "curl -s " in line]
    assert f"{API_URL}/videos" in curl
    assert f"Authorization: Bearer {KEY}" in curl
    body = json.loads(curl.split("-d ", 1)[1].strip("'"))
    assert body["model"] == "veo-3.1-fast"


def test_local_up_instructions_give_the_aws_cli_the_endpoint_itself() -> None:
    outputs = {
        "RequestQueueUrl": "http://127.0.0.1:4599/123456789012/sora-relay-RequestQueue-ABCDEFGHIJKL",
        "ApiUrl": API_URL,
    }
    [send] = [line for line in instructions("http://127.0.0.1:4599", outputs, KEY) if "send-message" in line]
    assert send.split()[:3] == ["aws", "--endpoint-url", "http://127.0.0.1:4599"]
    assert f"--queue-url {outputs['RequestQueueUrl']} " in send


def test_local_up_instructions_activate_the_virtualenv_and_send_a_request_of_its_own() -> None:
    outputs = {
        "RequestQueueUrl": "http://127.0.0.1:4599/123456789012/sora-relay-RequestQueue-ABCDEFGHIJKL",
        "ApiUrl": API_URL,
    }
    lines = instructions("http://127.0.0.1:4599", outputs, KEY)
    assert lines[0].split()[:2] == ["source", ".venv/bin/activate"]
    [send] = [line for line in lines if "send-message" in line]
    body = json.loads(send.split("--message-body ", 1)[1].strip("'"))
    assert "request_id" not in body  # a new request at each send, never a repeat of the docs' ad-2291


def test_local_up_instructions_stay_whole_lines_when_piped() -> None:
    outputs = {"RequestQueueUrl": "http://127.0.0.1:4599/123456789012/" + "q" * 120, "ApiUrl": API_URL}
    buffer = io.StringIO()
    console = output_console(buffer)  # not a terminal: 80 columns, unless told otherwise
    lines = instructions("http://127.0.0.1:4599", outputs, KEY)
    for line in lines:
        console.print(line, markup=False, highlight=False)
    assert buffer.getvalue().splitlines() == lines
