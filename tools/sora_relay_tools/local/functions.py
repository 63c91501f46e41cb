"""Loading a template function's handler and calling it as Lambda would."""

from __future__ import annotations

import importlib.util
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

Handler = Callable[[dict[str, Any], Any], Any]


@cache
def load_handler(code_dir: Path, handler: str) -> Handler:
    """The `module.function` named by a function's Handler, loaded from its CodeUri folder."""
    module_name, _, attribute = handler.rpartition(".")
    path = code_dir / f"{module_name.replace('.', '/')}.py"
    # Every function's module is called `app`: each gets a name of its own in sys.modules.
    spec = importlib.util.spec_from_file_location(f"lambda_{code_dir.name}_{module_name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"no handler module at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    loaded: Handler = getattr(module, attribute)
    return loaded


@dataclass
class LocalContext:
    """The `context` Lambda passes: the fields handlers and Powertools read."""

    function_name: str
    timeout_seconds: float = 60.0
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = ""
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = ""
    _deadline: float = field(init=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._deadline - time.monotonic()) * 1000), 0)
