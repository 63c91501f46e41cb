"""A handler's import (a Lambda cold start) loads what the handler needs, and no more: the
X-Ray SDK waits for the first traced invocation and the batch utility (with asyncio) for the
first batch, no function loads Powertools' parser models (every event source's, built at
import) nor its event handler (every resolver's), and none builds a model of ours (each is
built when first used: a function builds those it uses). Benchmark 5 measures what remains."""

import functools
import json
import subprocess  # nosec B404
import sys
from pathlib import Path

import pytest

from ..support.paths import ROOT

HANDLERS = sorted((ROOT / "functions").glob("*/app.py"))
NEVER_AT_IMPORT = (
    "aws_xray_sdk",
    "aws_lambda_powertools.utilities.parser",
    "aws_lambda_powertools.utilities.batch",
    "aws_lambda_powertools.event_handler",  # the API's OpenAPI document loads it, when asked for
)
# Another function's service, and the downloads' modules where the function makes none at import.
OTHERS_AT_IMPORT = {
    "submit": ("sora_relay.services.poll", "sora_relay.services.archive", "sora_relay.adapters.media"),
    "poll": ("sora_relay.services.submit.service", "sora_relay.services.archive", "sora_relay.adapters.media"),
    "sweep": ("sora_relay.services.submit.service", "sora_relay.services.archive", "sora_relay.adapters.media"),
    "archive": ("sora_relay.services.submit.service", "sora_relay.services.poll", "sora_relay.adapters.media"),
    "api": ("sora_relay.services.submit.service", "sora_relay.services.poll", "sora_relay.adapters.media"),
    "webhook": ("sora_relay.services.submit.service", "sora_relay.services.poll", "sora_relay.services.archive"),
}
LOADED_BY_IMPORT = """
import json, sys
from pathlib import Path
sys.path[:0] = [{code_dir!r}, {runtime!r}]
from sora_relay_tools.local.functions import load_handler
load_handler(Path({code_dir!r}), "app.handler")
from pydantic import BaseModel
def models(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from models(sub)
built = [f"{{m.__module__}}.{{m.__qualname__}}" for m in models(BaseModel) if m.__pydantic_complete__]
print(json.dumps({{"modules": sorted(sys.modules), "built": sorted(set(built))}}))
"""


@functools.cache  # one fresh interpreter per handler
def imported(handler: Path) -> dict[str, list[str]]:
    program = LOADED_BY_IMPORT.format(code_dir=str(handler.parent), runtime=str(ROOT / "layers" / "shared"))
    loaded = subprocess.run(  # noqa: S603  # nosec B603  # our own interpreter on our own code
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"}
    ).stdout
    return dict(json.loads(loaded))


@pytest.mark.parametrize("handler", HANDLERS, ids=[path.parent.name for path in HANDLERS])
def test_handler_import_loads_neither_the_xray_sdk_the_batch_utility_the_parser_models_nor_the_event_handler(
    handler: Path,
) -> None:
    assert [module for module in imported(handler)["modules"] if module.startswith(NEVER_AT_IMPORT)] == []


@pytest.mark.parametrize("handler", HANDLERS, ids=[path.parent.name for path in HANDLERS])
def test_handler_import_leaves_asyncio_to_the_first_batch(handler: Path) -> None:
    assert "asyncio" not in imported(handler)["modules"]


@pytest.mark.parametrize("handler", HANDLERS, ids=[path.parent.name for path in HANDLERS])
def test_handler_import_loads_no_other_functions_service_nor_the_downloads(handler: Path) -> None:
    others = OTHERS_AT_IMPORT[handler.parent.name]
    assert [module for module in imported(handler)["modules"] if module.startswith(others)] == []


@pytest.mark.parametrize("handler", HANDLERS, ids=[path.parent.name for path in HANDLERS])
def test_handler_import_builds_no_model_of_the_runtime(handler: Path) -> None:
    assert [model for model in imported(handler)["built"] if model.startswith(("sora_relay.", "app."))] == []
