"""The fault suites and their one table: crash anywhere, and every provider fault we know."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sora_relay_tools.faults.crash import SUBMIT_CALLS, CrashDrill, RunResult
from sora_relay_tools.local.run import function_output_into
from sora_relay_tools.simulator import Fault

PROVIDER_FAULTS: dict[str, list[tuple[str, Fault]]] = {
    "submit: 429 with Retry-After": [("submit", Fault(status=429, retry_after="3"))],
    "submit: 429 without Retry-After": [("submit", Fault(status=429))],
    "submit: 429 sustained (10 in a row)": [("submit", Fault(status=429))] * 10,
    "submit: 500": [("submit", Fault(status=500))],
    "submit: 503 twice": [("submit", Fault(status=503))] * 2,
    "submit: connection reset": [("submit", Fault(reset=True))],
    "submit: 409": [("submit", Fault(status=409))],
    "submit: 400 the plan's limit on running generations": [
        ("submit", Fault(status=400, code="MAX_PROCESSING_VIDEO_EXCEEDED"))
    ],
    "submit: 400 credit locked by running generations": [
        ("submit", Fault(status=400, code="NOT_ENOUGH_AND_LOCK_CREDIT"))
    ],
    "submit: 402 out of credit, twice": [("submit", Fault(status=402))] * 2,
    "submit: 401 key refused": [("submit", Fault(status=401))],
    "submit: accepted, then 504": [("submit", Fault(status=504, after_accepting=True))],
    "submit: accepted, then the connection closed": [("submit", Fault(reset=True, after_accepting=True))],
    "submit: accepted, answer unreadable": [("submit", Fault(malformed=True, after_accepting=True))],
    "submit: accepted, then 504; history 503": [
        ("submit", Fault(status=504, after_accepting=True)),
        ("history", Fault(status=503)),
    ],
    "status: 503": [("status", Fault(status=503))],
    "status: 429 with Retry-After": [("status", Fault(status=429, retry_after="60"))],
    "status: connection reset": [("status", Fault(reset=True))],
    "status: unreadable body": [("status", Fault(malformed=True))],
    "status: unknown status value": [("status", Fault(answer={"uuid": "sora_x", "status": "queued"}))],
    "status: 2 without an address": [("status", Fault(answer={"uuid": "sora_x", "status": 2}))],
    "download: cut short": [("media", Fault(truncate_at=5000))],
    "download: 500": [("media", Fault(status=500))],
    "download: 404 before expiry": [("media", Fault(status=404))],
    "download: 403 twice, then a fresh address": [("media", Fault(status=403))] * 2,
    "download: connection reset": [("media", Fault(reset=True))],
    # Best effort: the video's job ends as it would have, without a thumbnail.
    "thumbnail: 404": [("thumbnail", Fault(status=404))],
    "thumbnail: connection reset": [("thumbnail", Fault(reset=True))],
}


@dataclass(frozen=True)
class SuiteRow:
    suite: str
    faults: int
    requests: int
    duplicates: int
    duplicates_in_window: int
    events_lost: int
    objects_corrupt: int
    wrong_inputs: int
    other_problems: int

    @classmethod
    def of(cls, suite: str, faults: int, results: list[RunResult]) -> SuiteRow:
        return cls(
            suite=suite,
            faults=faults,
            requests=sum(r.requests for r in results),
            duplicates=sum(r.duplicate_submissions for r in results),
            duplicates_in_window=sum(r.duplicate_submissions for r in results if r.in_paid_window),
            events_lost=sum(r.lost_events for r in results),
            objects_corrupt=sum(r.corrupt_objects for r in results),
            wrong_inputs=sum(r.wrong_inputs for r in results),
            other_problems=sum(
                r.conflicting_events + r.unexpected_outcomes + r.unfinished_jobs + r.unmet_faults for r in results
            ),
        )


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The functions' logs and metrics, and moto's notes, kept off the report."""
    with function_output_into(io.StringIO()):
        yield


def crash_points(drill: CrashDrill, *, every: int = 1, fallback: bool = False) -> tuple[list[int], RunResult]:
    """The crash points of a run (`fallback`: of the request that falls back): every `every`-th
    outbound call, and always the first call of each kind and each call in the paid window
    (right after the provider accepted a submission)."""
    # A warm run first: the stack's first run also reads the API key, which the later runs
    # (the crashes) have cached, so its calls would be one off from theirs.
    drill.run(fallback=fallback)
    baseline = drill.run(fallback=fallback)
    calls = list(drill.injector.calls)
    points = set(range(1, len(calls) + 1, every))
    points |= {calls.index(call) + 1 for call in set(calls)}
    points |= {
        index + 2 for index, call in enumerate(calls) if call.startswith(SUBMIT_CALLS) and index + 1 < len(calls)
    }
    return sorted(points), baseline


# The lossy drill: this share of accepted submissions lose their answer, and of the invocations
# that submitted die right after; requests in fours whose history rows look alike (see run_lossy).
LOSSY_SHARE = 0.35
LOSSY_REQUESTS = 20


def run_lossy(drill: CrashDrill, seed: int, *, in_its_own_words: bool = False) -> tuple[SuiteRow, RunResult]:
    """The lossy drill; `in_its_own_words`, against a provider whose full records state settings
    in its own words (a Sora `small` as `720p`) and whose history is oldest first, with no `total`."""
    simulator = drill.simulator
    lost, crashes = simulator.answers_lost, drill.injector.crashes
    as_before = (simulator.record_words, simulator.history_newest_first, simulator.history_total)
    if in_its_own_words:
        simulator.record_words, simulator.history_newest_first, simulator.history_total = True, False, "absent"
    try:
        result = drill.run_lossy(LOSSY_REQUESTS, lost_answers=LOSSY_SHARE, crashes=LOSSY_SHARE, seed=seed)
    finally:
        simulator.record_words, simulator.history_newest_first, simulator.history_total = as_before
    faults = simulator.answers_lost - lost + drill.injector.crashes - crashes
    name = f"{LOSSY_SHARE:.0%} of answers lost and of submitters killed after accepting (seed {seed})"
    if in_its_own_words:
        name += ", records in the provider's own words, history oldest first without a total"
    return SuiteRow.of(name, faults, [result]), result


def run_suites(
    template: Path, *, every: int = 1, provider_faults: bool = True
) -> tuple[list[SuiteRow], list[RunResult]]:
    rows: list[SuiteRow] = []
    failures: list[RunResult] = []
    with quiet(), CrashDrill(template) as drill:
        points, baseline = crash_points(drill, every=every)
        crashes = [drill.run(crash_at=point) for point in points]
        rows.append(SuiteRow.of("no fault (baseline)", 0, [baseline]))
        rows.append(SuiteRow.of("crash at each outbound call", len(points), crashes))
        failures += [r for r in [baseline, *crashes] if not r.clean]
        points, baseline = crash_points(drill, every=every, fallback=True)
        crashes = [drill.run(crash_at=point, fallback=True) for point in points]
        rows.append(SuiteRow.of("crash at each outbound call around a fallback", len(points), crashes))
        failures += [r for r in [baseline, *crashes] if not r.clean]
        for seed, in_its_own_words in ((0, False), (1, False), (2, False), (3, True)):
            row, result = run_lossy(drill, seed, in_its_own_words=in_its_own_words)
            rows.append(row)
            failures += [] if result.clean else [result]
        if provider_faults:
            for name, faults in PROVIDER_FAULTS.items():
                result = drill.run(provider_faults=faults)
                rows.append(SuiteRow.of(f"provider {name}", len(faults), [result]))
                failures += [] if result.clean else [result]
    return rows, failures


def table(rows: list[SuiteRow]) -> str:
    header = (
        "suite",
        "faults",
        "requests",
        "dup. submitted",
        "(in window)",
        "events lost",
        "corrupt",
        "other's inputs",
        "other",
    )
    body = [
        (
            r.suite,
            r.faults,
            r.requests,
            r.duplicates,
            r.duplicates_in_window,
            r.events_lost,
            r.objects_corrupt,
            r.wrong_inputs,
            r.other_problems,
        )
        for r in rows
    ]
    totals = ("total", *(sum(row[i] for row in body) for i in range(1, len(header))))  # type: ignore[misc]
    widths = [max(len(str(line[i])) for line in [header, *body, totals]) for i in range(len(header))]

    def line(values: tuple[object, ...]) -> str:
        return (
            "| "
            + " | ".join(
                str(v).ljust(w) if i == 0 else str(v).rjust(w)
                for i, (v, w) in enumerate(zip(values, widths, strict=True))
            )
            + " |"
        )

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(row) for row in body), line(totals)])
