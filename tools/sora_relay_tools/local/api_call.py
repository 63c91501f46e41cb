"""One request through the local stack's HTTP API, as an application makes it: a key, a video
asked for, followed until it is done, and its bytes downloaded (`sora-relay local run`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sora_relay_tools.local.stack import LocalStack

API_REQUEST = {"prompt": "A paper boat drifts down a rain gutter", "model": "veo-3.1-fast", "seconds": "8"}


@dataclass
class ApiRoundTrip:
    video: dict[str, Any] = field(default_factory=dict)
    saved_to: Path | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.video.get("status") == "completed" and self.saved_to is not None


def api_round_trip(stack: LocalStack, out_dir: Path, timeout: float) -> ApiRoundTrip:
    """POST /v1/videos with a new key, GET it until it is completed or failed, then its content."""
    result = ApiRoundTrip()
    headers = {"Authorization": f"Bearer {stack.create_key(f'local-run-{int(time.time())}')}"}
    with httpx.Client(base_url=stack.outputs["ApiUrl"], headers=headers, timeout=30) as api:
        answer = api.post("/videos", json=API_REQUEST)
        if answer.status_code != 200:
            result.problems.append(f"POST /v1/videos answered {answer.status_code}: {answer.text}")
            return result
        result.video = answer.json()
        deadline = time.monotonic() + timeout
        while result.video["status"] in ("queued", "in_progress") and time.monotonic() < deadline:
            time.sleep(0.5)
            result.video = api.get(f"/videos/{result.video['id']}").json()
        if result.video["status"] != "completed":
            result.problems.append(f"the video ended {result.video['status']}: {result.video.get('error')}")
            return result
        content = api.get(f"/videos/{result.video['id']}/content", follow_redirects=True)
        if content.status_code != 200:
            result.problems.append(f"its content answered {content.status_code}")
            return result
        out_dir.mkdir(parents=True, exist_ok=True)
        result.saved_to = out_dir / f"{result.video['id']}.mp4"
        result.saved_to.write_bytes(content.content)
    return result
