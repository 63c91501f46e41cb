"""What one job's check, and one sweep, came to."""

from collections import Counter
from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    RUNNING = "running"
    HANDED_OFF = "handed_off"
    FAILED = "failed"
    FELL_BACK = "fell_back"  # failed at no cost: its next model waits in line
    PUBLISHED = "published"
    UNREACHABLE = "unreachable"
    REQUEUED = "requeued"
    SKIPPED = "skipped"
    ERRORED = "errored"  # the check raised; the job is checked again after a backoff
    LEFT_DUE = "left_due"  # not checked: too little time was left; handed on with its shard


@dataclass(frozen=True)
class SweepReport:
    outcomes: Counter[Outcome]
    backlogged: list[int]  # shards whose due jobs were not all checked in time

    @property
    def backlog(self) -> bool:
        return bool(self.backlogged)
