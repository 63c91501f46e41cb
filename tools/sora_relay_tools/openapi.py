"""docs/openapi.json: the HTTP API's OpenAPI document as the API function serves it at
`/v1/openapi.json` (`make schemas` writes it; a test fails when it is stale).

    python -m sora_relay_tools.openapi docs/openapi.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from sora_relay_tools.local.functions import load_handler

API_FUNCTION_DIR = Path(__file__).resolve().parents[2] / "functions" / "api"


def api_document() -> dict[str, Any]:
    document: dict[str, Any] = load_handler(API_FUNCTION_DIR, "app.api_document")()  # type: ignore[call-arg]
    return document


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/openapi.json")
    target.write_text(render(api_document()))
    print(f"wrote {target}")
