"""A handler's import (a Lambda cold start) loads what the handler needs, and no more: the
X-Ray SDK waits for the first traced invocation, and no function loads Powertools' parser
models (every event source's, built at import). Benchmark 5 measures what remains."""

import json
import subprocess  # nosec B404
import sys

import pytest

from ..support.paths import ROOT

HANDLERS = sorted((ROOT / "functions").glob("*/app.py"))
NEVER_AT_IMPORT = ("aws_xray_sdk", "aws_lambda_powertools.utilities.parser")
LOADED_BY_IMPORT = """
import importlib.util, json, sys
sys.path[:0] = [{code_dir!r}, {runtime!r}]
spec = importlib.util.spec_from_file_location("app", {path!r})
spec.loader.exec_module(importlib.util.module_from_spec(spec))
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("handler", HANDLERS, ids=[path.parent.name for path in HANDLERS])
def test_handler_import_loads_neither_the_xray_sdk_nor_the_parser_models(handler) -> None:
    program = LOADED_BY_IMPORT.format(
        code_dir=str(handler.parent), runtime=str(ROOT / "layers" / "shared"), path=str(handler)
    )
    loaded = subprocess.run(  # noqa: S603  # nosec B603  # our own interpreter on our own code
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"}
    ).stdout
    assert [module for module in json.loads(loaded) if module.startswith(NEVER_AT_IMPORT)] == []
