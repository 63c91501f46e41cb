"""The simulator: checks the key, validates submissions, progresses over time, serves real MP4s,
and answers as the real API does (`shapes`): bare records, UUIDv1 uuids, zone-less UTC times,
status 0 while queued, a history of lean rows whose prompt is cut, pages capped below the size
asked for, `media_type` `video`, media served as `application/octet-stream`, and error bodies
under `detail` with the provider's codes.

Behaviour a test can set:
- `generation_seconds`, `expire_after`, `video_size` (None serves the bundled MP4; a number
  serves a synthetic body of that many bytes, generated as it is sent);
- `fail_when(prompt)`: generations whose prompt matches end with status 3; `reject_when(prompt)`:
  with status -2 (a policy rejection, as some families write it);
- `filtered_when(prompt, family)`: the content filter a generation trips, if any (a status 3
  with its code: by default Veo's audio filter for a prompt with `[audio-filtered]`, its
  prominent-people refusal for `[prominent-people]`; other families make those videos);
- `retired_models`: models the provider no longer serves (a 400 naming the model at submit);
  `broken_models`: models whose generations all fail on the provider's side (`SYSTEM_ERROR`);
- `malformed_when(prompt)`: the finished video's address comes with a bogus host in front of it;
- `hold(prompt)` / `release(prompt)`: a held generation stays processing until released;
- `history_page_cap`, `history_newest_first`: the history's largest page and its order;
  `history_total`: how the list states its `total` ("number", "string", or "absent");
- `record_words`: full records state Sora's settings in the provider's own words (`720p`,
  `16:9`) rather than the words the request used (`small`, `landscape`);
- `max_running`: the plan's limit on generations running at once (a 400
  `MAX_PROCESSING_VIDEO_EXCEEDED` beyond it); `credits`: the account's balance (a 402
  `NOT_ENOUGH_CREDIT` when a generation's estimate exceeds it; None, unlimited);
- `address_delay_checks`: how many status calls report status 2 before the address appears;
- `thumbnails`: whether a finished generation offers a `thumbnail_url` (a small PNG);
- `credit_used(generation)`: the `used_credit` a finished generation reports (None: not stated;
  by default its estimate when it completed, nothing when it failed);
- `latency`: how long each API call takes (a provider round trip);
- `inject(endpoint, Fault(...))`: the next call to "submit", "status", "history", "media" or "thumbnail"
  answers with that fault (an HTTP status with an optional Retry-After, a delay, a hang-up, an
  unreadable or unexpected body, or a download cut short); with `after_accepting`, a
  submission is taken (and paid) first and its answer is lost that way;
- `lose_answers(share, seed)`: that share of the accepted submissions lose their answer (half
  as a 504, half as a hang-up), drawn from `seed`; `answers_lost` counts them.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import hashlib
import json
import random
import socket
import struct
import sys
import threading
import time
import zlib
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from sora_relay_tools.simulator.families import FAMILIES, check_extension, check_submission
from sora_relay_tools.simulator.media import frame_size, made_video
from sora_relay_tools.simulator.shapes import (
    MODEL_ALIASES,
    STATUS_DESCRIPTIONS,
    error,
    lean_row,
    uuid1_at,
    validation_error,
    zoneless,
)

_BLOCK = 1024 * 1024


class ManualClock:
    """A clock that moves only when told: lets a test age a generation past its expiry."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta

    def sleep(self, seconds: float) -> None:
        """A pause of the code under test: it passes on this clock, at once."""
        self.advance(timedelta(seconds=seconds))


@dataclass(frozen=True)
class Fault:
    status: int | None = None
    retry_after: str | None = None
    delay: float = 0.0
    malformed: bool = False  # a 200 whose body is not JSON
    answer: dict[str, Any] | None = None  # a 200 with this JSON body instead of the real one
    reset: bool = False  # hang up without answering
    truncate_at: int | None = None  # media: announce the full length, send this many bytes, hang up
    after_accepting: bool = False  # submit: take the generation, then answer with the fault instead
    trickle: float = 0.0  # a 200 whose body comes a byte at a time, this many seconds apart (10 s at most)
    code: str | None = None  # the error_code of an error answer (by default the status's usual one)


@dataclass
class Generation:
    id: int
    uuid: str
    fields: dict[str, str]  # the form as received
    family: str
    model: str
    file_names: list[str]
    file_digests: list[str]  # the sha256 of each reference file, in the order sent
    created_at: datetime
    expired_at: datetime
    generation_seconds: float
    fails: bool
    video_size: int | None
    filtered: str | None = None  # the code it failed with: a content filter's, or SYSTEM_ERROR
    rejects: bool = False
    malformed_address: bool = False
    extends: str | None = None  # the uuid of the generation it continues
    settings: dict[str, str] = field(default_factory=dict)  # as made (an extension's follow the earlier's)
    status_calls: int = 0

    @property
    def estimated_credit(self) -> int:
        return _estimate(self)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up before its answer is written (a call's deadline, a test's
        # hang-up) is no fault of the simulator's: no traceback in the test run's output.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass
class GeminiGenSimulator:
    api_key: str = "sim-api-key"
    host: str = "127.0.0.1"
    port: int = 0
    generation_seconds: float = 0.0
    expire_after: timedelta = timedelta(days=7)
    video_size: int | None = None
    address_delay_checks: int = 0
    latency: float = 0.0  # seconds each API call takes before it answers
    most_submissions_at_once: int = 0
    answers_lost: int = 0
    fail_when: Callable[[str], bool] = lambda prompt: "[fail]" in prompt
    reject_when: Callable[[str], bool] = lambda prompt: "[reject]" in prompt
    malformed_when: Callable[[str], bool] = lambda prompt: "[bogus-host]" in prompt
    filtered_when: Callable[[str, str], str | None] = field(default=lambda prompt, family: _veo_filters(prompt, family))
    retired_models: set[str] = field(default_factory=set)
    broken_models: set[str] = field(default_factory=set)
    history_page_cap: int = 20
    history_newest_first: bool = True
    history_total: Literal["number", "string", "absent"] = "number"
    record_words: bool = False
    max_running: int | None = None
    most_running: int = 0  # the most generations that ran at once
    # How long the generation of a prompt takes, when it is not `generation_seconds`.
    generation_time: Callable[[str], float | None] = lambda prompt: None
    credits: float | None = None
    capacity_refusals: int = 0
    thumbnails: bool = True
    credit_used: Callable[[Generation], float | None] = field(
        default=lambda generation: 0 if generation.fails else _estimate(generation)
    )
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    generations: dict[str, Generation] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    _faults: dict[str, deque[Fault]] = field(default_factory=lambda: defaultdict(deque))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _submissions_in_flight: int = 0
    _server: ThreadingHTTPServer | None = None
    _lost_answers: float = 0.0
    _random: random.Random = field(default_factory=random.Random)
    _ids: random.Random = field(default_factory=lambda: random.Random(0))  # nosec B311  # ids, not secrets
    _held: set[str] = field(default_factory=set)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> GeminiGenSimulator:
        simulator = self

        class Handler(_Handler):
            sim = simulator

        self._server = _Server((self.host, self.port), Handler)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="geminigen-simulator", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> GeminiGenSimulator:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the simulator first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- what tests set and read --------------------------------------------------------------
    def inject(self, endpoint: str, *faults: Fault) -> None:
        assert endpoint in {"submit", "status", "history", "media", "thumbnail"}, endpoint
        with self._lock:
            self._faults[endpoint].extend(faults)

    def lose_answers(self, share: float, seed: int = 0) -> None:
        with self._lock:
            self._lost_answers = share
            self._random = random.Random(seed)  # nosec B311  # which answers a test loses

    def hold(self, prompt: str) -> None:
        """Generations of this prompt stay processing until `release`."""
        with self._lock:
            self._held.add(prompt)

    def release(self, prompt: str) -> None:
        with self._lock:
            self._held.discard(prompt)

    def clear_faults(self) -> int:
        """Drop the injected faults no call has met yet; returns how many there were."""
        with self._lock:
            pending = sum(len(queue) for queue in self._faults.values())
            self._faults.clear()
        return pending

    def submissions(self, prompt: str | None = None) -> list[Generation]:
        with self._lock:
            found = list(self.generations.values())
        return [g for g in found if prompt is None or g.fields.get("prompt") == prompt]

    def video_bytes(self, generation: Generation) -> bytes:
        """The whole video of a generation (for tests: only for small ones)."""
        return b"".join(self._video_chunks(generation))

    @contextlib.contextmanager
    def submission_in_flight(self) -> Iterator[None]:
        with self._lock:
            self._submissions_in_flight += 1
            self.most_submissions_at_once = max(self.most_submissions_at_once, self._submissions_in_flight)
        try:
            yield
        finally:
            with self._lock:
                self._submissions_in_flight -= 1

    # -- the API --------------------------------------------------------------------------
    def _next_fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            queue = self._faults[endpoint]
            return queue.popleft() if queue else None

    def _submit(
        self, form: dict[str, str], files: list[tuple[str, str]], family: str = "sora", extend: bool = False
    ) -> tuple[int, dict[str, Any]]:
        """A new generation of `family`'s endpoint, or with `extend` one continuing `ref_history`."""
        # An aspect ratio it does not serve, replaced with its default instead of refused, as the
        # raw API has done (4:5 became 16:9).
        swapped = {"aspect_ratio": dict(FAMILIES[family].defaults).get("aspect_ratio", "16:9")}
        checked = {**form, **swapped} if form.get("aspect_ratio") == _SWAPPED_RATIO else form
        problem = check_extension(family, checked) if extend else check_submission(family, checked)
        if problem:
            return problem
        earlier = self.generations.get(form.get("ref_history", "")) if extend else None
        if extend and (earlier is None or earlier.family != family or self._running(earlier, self.clock())):
            return 400, error("INVALID_INPUT", "ref_history must be a finished generation of this family")
        model = earlier.model if earlier is not None else form.get("model") or FAMILIES[family].default_model
        if model in self.retired_models:
            return 400, error("MODEL_NOT_AVAILABLE", f"The model {model} is no longer available.")
        made_as = earlier.settings if earlier is not None else dict(FAMILIES[family].defaults)
        settings = {**made_as, **_settings(checked)}
        now = self.clock()
        filtered = self.filtered_when(form["prompt"], family)
        if form.get("model") in self.broken_models:
            filtered = "SYSTEM_ERROR"
        with self._lock:
            running = sum(1 for g in self.generations.values() if self._running(g, now))
            if self.max_running is not None and running >= self.max_running:
                self.capacity_refusals += 1
                return 400, error(
                    "MAX_PROCESSING_VIDEO_EXCEEDED",
                    f"You have reached the maximum number of {self.max_running} concurrent video generations"
                    " allowed by your plan. Please wait for one to finish before starting another.",
                )
            price = FAMILIES[family].price
            if self.credits is not None and price > self.credits:
                return 402, error("NOT_ENOUGH_CREDIT", "You do not have enough credits for this generation.")
            if self.credits is not None:
                self.credits -= price
            generation = Generation(
                id=len(self.generations) + 1,
                uuid=uuid1_at(now, self._ids),
                fields=form,
                family=family,
                model=model,
                extends=earlier.uuid if earlier is not None else None,
                settings=settings,
                file_names=[name for name, _ in files],
                file_digests=[digest for _, digest in files],
                created_at=now,
                expired_at=now + self.expire_after,
                generation_seconds=self.generation_time(form["prompt"]) or self.generation_seconds,
                fails=self.fail_when(form["prompt"]) or filtered is not None,
                filtered=filtered,
                rejects=self.reject_when(form["prompt"]),
                malformed_address=self.malformed_when(form["prompt"]),
                video_size=self.video_size,
            )
            self.generations[generation.uuid] = generation
            self.most_running = max(self.most_running, running + 1)
        return 200, self._record(generation, status=0, percentage=0)

    def _running(self, generation: Generation, now: datetime) -> bool:
        return generation.fields["prompt"] in self._held or (
            (now - generation.created_at).total_seconds() < generation.generation_seconds
        )

    def _lost_answer(self) -> Fault | None:
        """The fault that loses this accepted submission's answer, if one does."""
        with self._lock:
            if not self._lost_answers or self._random.random() >= self._lost_answers:
                return None
            self.answers_lost += 1
            return Fault(status=504) if self._random.random() < 0.5 else Fault(reset=True)

    def _history(self, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        try:
            per_page = int(query.get("items_per_page", ["10"])[0])
            page = int(query.get("page", ["1"])[0])
        except ValueError:
            return 422, validation_error("items_per_page", "value is not a valid integer", "int_parsing")
        if per_page < 1 or page < 1:
            return 422, validation_error("page", "ensure this value is greater than 0", "greater_than")
        per_page = min(per_page, self.history_page_cap)
        with self._lock:
            ordered = sorted(
                self.generations.values(), key=lambda g: (g.created_at, g.id), reverse=self.history_newest_first
            )
        chosen = ordered[(page - 1) * per_page : page * per_page]
        rows = [lean_row(self._state(g, status_call=False)) for g in chosen]
        body: dict[str, Any] = {"success": True, "result": rows}
        if self.history_total != "absent":
            body["total"] = len(ordered) if self.history_total == "number" else str(len(ordered))
        return 200, body

    def _status(self, uuid: str) -> tuple[int, dict[str, Any]]:
        generation = self.generations.get(uuid)
        if generation is None:
            return 404, error("HISTORY_NOT_FOUND", "generation not found")
        return 200, self._state(generation, status_call=True)

    def _state(self, generation: Generation, *, status_call: bool) -> dict[str, Any]:
        """A generation's record now; a status call counts towards the address's delay."""
        now = self.clock()
        elapsed = (now - generation.created_at).total_seconds()
        if generation.rejects:  # a policy rejection comes at once
            return self._record(generation, status=-2, percentage=0)
        if self._running(generation, now):
            # Queued (0) for its first tenth, then processing (1).
            percentage = min(int(100 * elapsed / generation.generation_seconds), 99)
            status = 0 if elapsed < generation.generation_seconds / 10 else 1
            return self._record(generation, status=status, percentage=percentage if status else 0)
        used = self.credit_used(generation)
        finished: dict[str, object] = {"used_credit": used} if used is not None else {}
        if generation.fails:
            return {**self._record(generation, status=3, percentage=100), **finished}
        generation.status_calls += status_call
        if generation.status_calls <= self.address_delay_checks:
            return self._record(generation, status=2, percentage=100)
        if self.thumbnails:
            finished["thumbnail_url"] = f"{self.base_url}/media/{generation.uuid}.thumbnail.png"
        video_url = f"{self.base_url}/media/{generation.uuid}.mp4"
        if generation.malformed_address:
            video_url = f"https://s3.us-east-005.backblazeb2.com/{video_url}"
        record = self._record(generation, status=2, percentage=100)
        video = {"video_url": video_url, "last_frame": None, **{n: record[n] for n in _SETTINGS if n in record}}
        return {**record, **finished, "generated_video": [video]}

    def _record(self, generation: Generation, *, status: int, percentage: int) -> dict[str, Any]:
        model = generation.model
        failed = status == 3 or status < 0
        code, message = ("", "")
        if status == 3 and generation.filtered == "SYSTEM_ERROR":
            code, message = "SYSTEM_ERROR", "the generation failed on our side"
        elif status == 3 and generation.filtered:
            code, message = generation.filtered, "the generation was refused by a content filter"
        elif status == 3:
            code, message = "PUBLIC_ERROR_UNSAFE_CONTENT", "the prompt was refused by the content policy"
        elif status < 0:
            code, message = "PUBLIC_ERROR_POLICY_VIOLATION", "the request violates the usage policy"
        return {
            "id": generation.id,
            "uuid": generation.uuid,
            "model_name": MODEL_ALIASES.get(model, model),
            "input_text": generation.fields["prompt"],
            **{name: self._recorded(generation.family, name, value) for name, value in generation.settings.items()},
            "type": "video",
            "status": status,
            "status_desc": STATUS_DESCRIPTIONS[status],
            "status_percentage": percentage,
            "error_code": code if failed else "",
            "error_message": message if failed else "",
            "expired_at": zoneless(generation.expired_at),
            "estimated_credit": _estimate(generation),
            "media_type": "video",
            "created_at": zoneless(generation.created_at),
            "updated_at": zoneless(self.clock()),
        }

    def _recorded(self, family: str, name: str, value: str) -> int | str:
        """A setting as a record states it: a duration as a number; with `record_words`, Sora's
        sizes and orientations as the provider's page writes them (no other family's are known)."""
        if name == "duration":
            return int(value)
        return RECORD_WORDS.get(value, value) if self.record_words and family == "sora" else value

    def thumbnail_bytes(self, generation: Generation) -> bytes:
        """The still a finished generation offers: a small PNG of a colour of its own."""
        shade = random.Random(generation.uuid).randbytes(3)  # nosec B311  # test data
        return _png(16, 9, shade)

    def _video_size(self, generation: Generation) -> int:
        return len(self._made(generation)) if generation.video_size is None else generation.video_size

    def _made(self, generation: Generation) -> bytes:
        """The bundled MP4 as this generation was made: its duration and frame; every other
        one with its `moov` after the media."""
        seconds = float(generation.settings.get("duration", "5"))
        return made_video(*frame_size(generation.settings), seconds, moov_last=generation.id % 2 == 0)

    def _video_chunks(self, generation: Generation) -> Iterator[bytes]:
        if generation.video_size is None:
            yield self._made(generation)
            return
        # A synthetic body, made as it is sent: one random block per generation, repeated.
        block = random.Random(generation.uuid).randbytes(_BLOCK)  # nosec B311  # test data
        remaining = generation.video_size
        while remaining > 0:
            piece = block[: min(_BLOCK, remaining)]
            remaining -= len(piece)
            yield piece


_SETTINGS = ("duration", "resolution", "aspect_ratio", "mode")
_SWAPPED_RATIO = "4:5"
# Sora's request words as its records write them (the provider's page: small is 720p, landscape 16:9).
RECORD_WORDS = {"small": "720p", "large": "1080p", "landscape": "16:9", "portrait": "9:16"}
# The error code each status usually comes with.
_USUAL_CODES = {400: "INVALID_INPUT", 401: "API_KEY_NOT_FOUND", 402: "NOT_ENOUGH_CREDIT", 429: "RATE_LIMITED"}


def _error_body(status: int, code: str | None) -> dict[str, Any]:
    """An injected error as the provider writes it: FastAPI's list for a 422, else `detail`."""
    if status == 422 and code is None:
        return validation_error("prompt", f"injected HTTP {status}")
    return error(code or _USUAL_CODES.get(status, "SYSTEM_ERROR"), f"injected HTTP {status}")


def _settings(form: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in form.items() if name in _SETTINGS}


def _veo_filters(prompt: str, family: str) -> str | None:
    """Veo's filters, as its users meet them: its audio filter (Veo 3.x always makes audio) and
    its refusal of prominent people; Grok and Kling make the same prompts."""
    if family != "veo":
        return None
    if "[audio-filtered]" in prompt:
        return "PUBLIC_ERROR_AUDIO_FILTERED"
    return "PUBLIC_ERROR_PROMINENT_PEOPLE" if "[prominent-people]" in prompt else None


def _estimate(generation: Generation) -> int:
    # Sora's pro models cost more, as they do at the provider.
    return 75 if generation.model == "sora-2-pro" else FAMILIES[generation.family].price


def _png(width: int, height: int, rgb: bytes) -> bytes:
    """A one-colour PNG (the format's own chunks, so that no imaging library is needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + rgb * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


_ANSWERED = object()


class _Handler(BaseHTTPRequestHandler):
    sim: GeminiGenSimulator
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle's algorithm the body would wait for
    # the client's delayed ACK of the headers (40 ms on Linux), as no production server lets it.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        """Quiet: tests read the simulator's state, not its access log."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        path = urlsplit(self.path).path
        self.sim.requests.append(("POST", path))
        kind, _, family = path.removeprefix("/uapi/v1/").partition("/")
        extend = kind == "video-extend"
        known = kind == "video-gen" or (extend and FAMILIES.get(family, FAMILIES["sora"]).extend_fields is not None)
        if not known or family not in FAMILIES:
            return self._json(404, {"detail": "Not Found"})
        with self.sim.submission_in_flight():
            fault = self._fault_before_the_api("submit")
            if fault is _ANSWERED:
                return None
            form, files = _parse_multipart(self.headers.get("content-type", ""), body)
            if form is None:
                return self._json(422, validation_error("prompt", "field required", "missing"))
            status, answer = self.sim._submit(form, files, family, extend)
            lost = fault if isinstance(fault, Fault) else self.sim._lost_answer() if status == 200 else None
            if lost is not None and self._apply(lost):
                return None
            return self._json(status, answer)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        self.sim.requests.append(("GET", path))
        if path.startswith("/uapi/v1/history/"):
            if self._fault_before_the_api("status") is _ANSWERED:
                return None
            status, answer = self.sim._status(path.rsplit("/", 1)[-1])
            return self._json(status, answer)
        if path == "/uapi/v1/histories":
            if self._fault_before_the_api("history") is _ANSWERED:
                return None
            status, answer = self.sim._history(parse_qs(urlsplit(self.path).query))
            return self._json(status, answer)
        if path.startswith("/media/") and path.endswith(".thumbnail.png"):
            return self._thumbnail(path.removeprefix("/media/").removesuffix(".thumbnail.png"))
        if path.startswith("/media/") and path.endswith(".mp4"):
            return self._media(path.removeprefix("/media/").removesuffix(".mp4"))
        return self._json(404, {"detail": "Not Found"})

    def _media(self, uuid: str) -> None:
        generation = self.sim.generations.get(uuid)
        if generation is None:
            return self._json(404, {"detail": "Not Found"})
        if self.sim.clock() >= generation.expired_at:
            return self._json(410, {"detail": "this result has expired"})
        fault = self.sim._next_fault("media")
        if fault and fault.truncate_at is None and self._apply(fault):
            return None
        size = self.sim._video_size(generation)
        self.send_response(200)
        self.send_header("content-type", "application/octet-stream")  # as the provider's CDN serves it
        self.send_header("content-length", str(size))
        self.end_headers()
        sent = 0
        limit = fault.truncate_at if fault and fault.truncate_at is not None else size
        try:
            for chunk in self.sim._video_chunks(generation):
                piece = chunk[: max(limit - sent, 0)]
                self.wfile.write(piece)
                sent += len(piece)
                if sent >= limit:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        if sent < size:
            self.close_connection = True
        return None

    def _thumbnail(self, uuid: str) -> None:
        generation = self.sim.generations.get(uuid)
        if generation is None or not self.sim.thumbnails:
            return self._json(404, {"detail": "Not Found"})
        fault = self.sim._next_fault("thumbnail")
        if fault and self._apply(fault):
            return None
        return self._raw(200, self.sim.thumbnail_bytes(generation), "image/png")

    def _fault_before_the_api(self, endpoint: str) -> object:
        """What every API call goes through: its latency, the key check, then any injected
        fault. `_ANSWERED` when one of them has answered already; a fault that strikes once the
        call has been acted on is returned for the caller to apply then."""
        time.sleep(self.sim.latency)
        if not self._authorised():
            return _ANSWERED
        fault = self.sim._next_fault(endpoint)
        if fault is not None and fault.after_accepting:
            return fault
        return _ANSWERED if fault is not None and self._apply(fault) else None

    def _authorised(self) -> bool:
        key = self.headers.get("x-api-key")
        if key != self.sim.api_key:
            code = "API_KEY_REQUIRED" if not key else "API_KEY_NOT_FOUND"
            self._json(401, error(code, "The API key is missing or not valid."))
            return False
        return True

    def _apply(self, fault: Fault) -> bool:
        """Answer with the fault; False when it only delays the real answer."""
        if fault.delay:
            time.sleep(fault.delay)
        if fault.reset:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return True
        if fault.answer is not None:
            self._json(200, fault.answer)
            return True
        if fault.trickle:
            self._trickle(fault.trickle)
            return True
        if fault.malformed:
            self._raw(200, b"<html>oops</html>", "text/html")
            return True
        if fault.status is not None:
            headers = {"retry-after": fault.retry_after} if fault.retry_after is not None else {}
            self._json(fault.status, _error_body(fault.status, fault.code), headers)
            return True
        return False

    def _trickle(self, interval: float) -> None:
        body = json.dumps({"detail": "slow " * 1000}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.close_connection = True
        deadline = time.monotonic() + 10
        with contextlib.suppress(OSError):
            for byte in body:
                if time.monotonic() > deadline:
                    break
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(interval)

    def _json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._raw(status, json.dumps(body).encode(), "application/json", headers)

    def _raw(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def _parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str] | None, list[tuple[str, str]]]:
    """The form's fields, and each file part's name and sha256."""
    if not content_type.startswith("multipart/form-data"):
        return None, []
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"content-type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    form: dict[str, str] = {}
    files: list[tuple[str, str]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name in ("files", "ref_images"):
            content = part.get_payload(decode=True)
            content = content if isinstance(content, bytes) else b""
            files.append((part.get_filename() or "", hashlib.sha256(content).hexdigest()))
        elif isinstance(name, str):
            form[name] = part.get_content()
    return form, files
