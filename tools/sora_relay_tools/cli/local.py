"""`sora-relay local`: the whole stack on this machine."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING

import click
from rich.console import Console

if TYPE_CHECKING:
    # Imported when a `local` command runs: every other command starts without them.
    from sora_relay_tools.local.stack import LocalStack, Provider

DEFAULT_BASE_URL = "https://api.geminigen.ai"


# What the local stack needs beyond the command (the `local` extra), by import name.
LOCAL_MODULES = ("moto", "samtranslator", "waitress")


@click.group()
def local() -> None:
    """The whole stack on this machine: moto as AWS, the simulator (or the real provider)."""
    missing = [name for name in LOCAL_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise click.ClickException(
            f"the local stack needs {', '.join(missing)}, which `pip install '.[cli]'` does not install:"
            " run `make run` (it makes .venv with everything), or `pip install '.[local]'`"
        )


_template = click.option(
    "--template", type=click.Path(exists=True, path_type=Path), default=Path("template.yaml"), show_default=True
)
_schedule = click.option(
    "--schedule-seconds", type=float, default=1.0, show_default=True, help="Run the poller this often."
)
_parameters = click.option(
    "--parameter",
    "parameters",
    multiple=True,
    metavar="NAME=VALUE",
    help="A template parameter, such as DailyCreditBudget=100 (repeatable).",
)
_generation = click.option(
    "--generation-seconds", type=float, default=6.0, show_default=True, help="How long the simulator takes a video."
)


@local.command("run")
@click.argument("prompts", nargs=-1)
@_template
@click.option("--events", type=click.Path(exists=True, path_type=Path), default=Path("events"), show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=Path("out"), show_default=True)
@click.option("--timeout", type=float, default=900.0, show_default=True, help="Give up on jobs after this long.")
@_schedule
@_generation
@_parameters
def run_command(
    prompts: tuple[str, ...],
    template: Path,
    events: Path,
    out: Path,
    timeout: float,
    schedule_seconds: float,
    generation_seconds: float,
    parameters: tuple[str, ...],
) -> None:
    """Send PROMPTS (or the sample requests in events/) through a local stack, and one request
    through its HTTP API; videos land in --out.

    With GEMINIGEN_API_KEY set, the requests go to the real provider (GEMINIGEN_BASE_URL,
    default https://api.geminigen.ai) and spend real credits; AWS stays local.
    """
    from sora_relay_tools.local.api_call import api_round_trip
    from sora_relay_tools.local.run import function_output_to, plan, report, run

    console = output_console()
    with contextlib.ExitStack() as resources:
        provider, simulated = _provider(resources, generation_seconds, console)
        planned = plan(events, prompts, simulated=simulated)
        log_file = out / "sora-relay-local.log"
        resources.enter_context(function_output_to(log_file))
        console.print(f"Deploying {template} into moto; the functions log to {log_file}")
        stack = resources.enter_context(_stack(template, provider, schedule_seconds, parameters, port=0))
        tracked = run(stack, planned, out_dir=out, timeout=timeout, console=console)
        console.print(f"One request through the HTTP API at {stack.outputs['ApiUrl']}...")
        through_api = api_round_trip(stack, out, timeout)
    ok = report(tracked, console)
    console.rule(f"HTTP API: {through_api.video.get('id', 'no video')}")
    if through_api.video:
        console.print_json(data=through_api.video)
    if through_api.saved_to is not None:
        console.print(f"GET /v1/videos/{through_api.video['id']}/content -> {through_api.saved_to}")
    for problem in through_api.problems:
        console.print(f"[red]{problem}[/]")
    sys.exit(0 if ok and through_api.ok else 1)


@local.command("up")
@_template
@click.option("--port", type=int, default=4599, show_default=True, help="moto's port on 127.0.0.1.")
@click.option("--api-port", type=int, default=4600, show_default=True, help="The HTTP API's port on 127.0.0.1.")
@click.option("--log-file", type=click.Path(path_type=Path), default=Path("out/sora-relay-local.log"))
@_schedule
@_generation
@_parameters
def up_command(
    template: Path,
    port: int,
    api_port: int,
    log_file: Path,
    schedule_seconds: float,
    generation_seconds: float,
    parameters: tuple[str, ...],
) -> None:
    """Keep a local stack up until interrupted, and print its events as they come."""
    from sora_relay_tools.local.run import function_output_to

    console = output_console()
    with contextlib.ExitStack() as resources:
        provider, _ = _provider(resources, generation_seconds, console)
        resources.enter_context(function_output_to(log_file))
        stack = resources.enter_context(
            _stack(template, provider, schedule_seconds, parameters, port=port, api_port=api_port)
        )
        api_key = stack.create_key(f"local-{int(time.time())}")
        console.print(f"[bold]sora-relay is up[/] (functions log to {log_file}). In another terminal:\n")
        for line in instructions(stack.endpoint_url, stack.outputs, api_key):
            console.print(line, markup=False, highlight=False)
        console.print("\nEvents on the completion topic follow. Ctrl-C stops.")
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                for event in stack.drain_events():
                    console.print_json(data=event)
                time.sleep(0.5)


def output_console(file: IO[str] | None = None) -> Console:
    """Standard output, where a long value (a queue URL) stays on one line to be copied whole,
    whatever the terminal's width, or none (rich assumes 80 columns when piped)."""
    return Console(file=file or sys.stdout, soft_wrap=True)


def instructions(endpoint_url: str, outputs: dict[str, str], api_key: str) -> list[str]:
    """What to type in another terminal, from the repository, as it works when pasted: the
    virtualenv first (the command is installed there); the AWS CLI gets --endpoint-url itself
    (version 1, as pip installs it, ignores AWS_ENDPOINT_URL for SQS); boto3, and so the
    sora-relay command, reads AWS_ENDPOINT_URL. Then the HTTP API with its key, by curl."""
    queue = outputs["RequestQueueUrl"]
    # No request_id in the body: each send is a new request (its id is the message's), where the
    # sample's `ad-2291` would be a repeat of the docs' first example, and ignored.
    body = '{"prompt": "A golden retriever puppy in a field of sunflowers", "model": "veo-3.1-fast"}'
    lines = [
        "  source .venv/bin/activate   # the sora-relay command, where make installed it",
        f"  export AWS_ENDPOINT_URL={endpoint_url}",
        "  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_DEFAULT_REGION=us-east-1",
        f"  aws --endpoint-url {endpoint_url} sqs send-message --queue-url {queue} --message-body '{body}'",
        '  sora-relay submit "a red kite over the hills" --wait --download out/',
        "",
        f"  HTTP API: {outputs['ApiUrl']}   key: {api_key}",
        f"  curl -s {outputs['ApiUrl']}/videos -H 'Authorization: Bearer {api_key}'"
        """ -H 'Content-Type: application/json' -d '{"prompt": "A lighthouse at dawn", "model": "veo-3.1-fast"}'""",
        f"  curl -sL {outputs['ApiUrl']}/videos/<id>/content -H 'Authorization: Bearer {api_key}' -o out/video.mp4",
        "",
    ]
    lines += [f"  {name:<28} {value}" for name, value in sorted(outputs.items())]
    return lines


def _provider(resources: contextlib.ExitStack, generation_seconds: float, console: Console) -> tuple[Provider, bool]:
    from sora_relay_tools.local.stack import Provider

    api_key = os.environ.get("GEMINIGEN_API_KEY")
    if api_key:
        base_url = os.environ.get("GEMINIGEN_BASE_URL", DEFAULT_BASE_URL)
        console.print(f"[yellow]Using the real provider at {base_url}: every request spends real credits.[/]")
        return Provider(base_url, api_key), False
    from sora_relay_tools.simulator import GeminiGenSimulator

    simulator = resources.enter_context(GeminiGenSimulator(generation_seconds=generation_seconds))
    return Provider(simulator.base_url, simulator.api_key), True


def _stack(
    template: Path,
    provider: Provider,
    schedule_seconds: float,
    parameters: tuple[str, ...],
    *,
    port: int,
    api_port: int = 0,
) -> LocalStack:
    from sora_relay_tools.local.stack import LocalStack

    given = dict(parameter.partition("=")[::2] for parameter in parameters)
    return LocalStack(
        template,
        provider,
        port=port,
        schedule_interval=schedule_seconds,
        # Webhooks to receivers on this machine (http, loopback) are allowed on a local stack.
        parameters={"PollIntervalSeconds": "2", "CallbacksAllowPrivate": "true", **given},
        api_port=api_port,
    )
