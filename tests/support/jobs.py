"""Jobs as a test arranges them: any fields changed, as a version the store takes next."""

import uuid
from dataclasses import replace
from datetime import datetime

from sora_relay.domain.jobs import Job


def next_version(job: Job, now: datetime, **changes: object) -> Job:
    """The job's next version with these fields changed, whatever transition would make them
    (the store's own tests: a version is a version)."""
    return replace(job, updated_at=now, version=job.version + 1, revision=uuid.uuid4().hex, **changes)  # type: ignore[arg-type]
