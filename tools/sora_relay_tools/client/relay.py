"""The client: a deployed stack's queue, jobs table, bucket and topic behind one object."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from sora_relay.adapters.breakers import DynamoBreakers
from sora_relay.adapters.dynamodb import DynamoJobStore
from sora_relay.adapters.keys import DynamoKeys
from sora_relay.adapters.line import DynamoLine
from sora_relay.adapters.messaging import SnsEventPublisher
from sora_relay.domain.events import ThumbnailObject, VideoEvent
from sora_relay.domain.families import RequestRules, parse_request
from sora_relay.domain.jobs import Job, JobState
from sora_relay.domain.policy import Policy
from sora_relay.domain.ports import BreakerState
from sora_relay.domain.request import REFERENCE_FIELDS, InvalidRequest, VideoRequest
from sora_relay.services.cancel import Canceled, CancelService
from sora_relay.services.finisher import Finisher
from sora_relay.settings import DEFAULT_POLL_SHARDS
from sora_relay_tools.client.dead_letters import dead_letter_queues, redrive
from sora_relay_tools.client.errors import (
    CannotCancel,
    JobNotFound,
    NotArchived,
    RelayError,
    StackNotFound,
)
from sora_relay_tools.client.event_stream import EventStream
from sora_relay_tools.client.handles import JobHandle
from sora_relay_tools.client.line import LinePlace, LineView
from sora_relay_tools.client.stack import SQS_BATCH, DeadLetterQueue, StackResources


class _Uncounted:
    """The client counts no metrics: the stack's functions do."""

    def count(self, name: str, value: float = 1, unit: str = "Count", **dimensions: str) -> None:
        return None


@dataclass(frozen=True)
class Rejected:
    """A line or request the client refused before sending: it never reached the queue."""

    index: int
    reason: str


class Relay:
    def __init__(self, resources: StackResources, session: boto3.Session | None = None) -> None:
        self.resources = resources
        self._session = session = session or boto3.Session()
        dynamodb = session.client("dynamodb")
        self.keys = DynamoKeys(dynamodb, resources.outputs.get("ApiKeysTableName", ""))
        self._sqs = session.client("sqs")
        self._sns = session.client("sns")
        self._jobs = DynamoJobStore(
            dynamodb,
            resources["JobsTableName"],
            # The stack's own: a canceled job's index entry must fall in a shard its sweeps read.
            shards=int(resources.outputs.get("PollShards", DEFAULT_POLL_SHARDS)),
            # A canceled job is kept as long as the stack keeps any (its message may come late).
            finished_ttl=timedelta(days=int(resources.outputs.get("FinishedJobTtlDays", "30"))),
        )
        publisher = SnsEventPublisher(self._sns, resources["CompletionTopicArn"])
        finisher = Finisher(store=self._jobs, publisher=publisher, metrics=_Uncounted(), policy=Policy())
        self._canceler = CancelService(store=self._jobs, finisher=finisher, clock=_utc_now)
        self._breakers = DynamoBreakers(dynamodb, resources["JobsTableName"])
        self._line = LineView(
            DynamoLine(dynamodb, resources["JobsTableName"]),
            int(resources.outputs.get("MaxActiveGenerations", "5")),
        )
        # Requests are judged as the stack judges them: its catalogue, ExtraModels and DefaultModel.
        self.rules = RequestRules.of(
            resources.outputs.get("ExtraModels", ""),
            resources.outputs.get("DefaultModel") or "sora-2",
            resources.outputs.get("FallbackModels", ""),
        )

    # Made when first used: most commands need neither (a command is a process of its own).
    @cached_property
    def _secrets(self) -> Any:
        return self._session.client("secretsmanager")

    @cached_property
    def _s3(self) -> Any:
        # SigV4 links: buckets made since mid-2020 refuse SigV2's (and 7 days is SigV4's limit).
        return self._session.client("s3", config=Config(signature_version="s3v4"))

    @classmethod
    def from_stack(cls, name: str, session: boto3.Session | None = None) -> Relay:
        session = session or boto3.Session()
        cloudformation = session.client("cloudformation")
        try:
            stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
        except cloudformation.exceptions.ClientError as error:
            raise StackNotFound(f"no stack named {name!r}: {error.response['Error']['Message']}") from error
        outputs = {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}
        return cls(StackResources.of(outputs), session)

    def secret(self, arn: str) -> str:
        """A secret of the stack's own (the webhooks' signing secret)."""
        return str(self._secrets.get_secret_value(SecretId=arn)["SecretString"])

    # --- sending ---------------------------------------------------------------------------

    def request(
        self,
        prompt: str,
        *,
        model: str | None = None,
        files: Iterable[str] = (),
        extend: str | None = None,
        metadata: Mapping[str, str] | None = None,
        request_id: str | None = None,
        fallback: Sequence[str | Mapping[str, Any]] | None = None,
        **settings: str | int | bool | None,
    ) -> dict[str, Any]:
        """A request body from arguments, unset ones left to the stack's defaults. `settings` are
        the model's family's fields by the provider's names (duration, resolution, aspect_ratio,
        mode, mode_image, skip_audio); `files` are reference images, put in the field the model's
        family takes them in; `extend` continues an earlier request's video; `fallback`, the
        models to try after a failure that cost nothing (names, or a model with its settings)."""
        references = list(files)
        spec = self.rules.catalogue.model(model or self.rules.default_model)
        field = self.rules.catalogue.family_of(spec).references.field if spec is not None else "files"
        fields = {
            "request_id": request_id,
            "prompt": prompt,
            "model": model,
            "extend": {"request_id": extend} if extend else None,
            **settings,
            field: references or None,
            "metadata": dict(metadata) if metadata else None,
            "fallback": [entry if isinstance(entry, str) else dict(entry) for entry in fallback]
            if fallback is not None
            else None,
        }
        return {name: value for name, value in fields.items() if value is not None}

    def submit(self, prompt: str, **options: Any) -> JobHandle:
        """Send one request; local paths in `files` are uploaded to the stack's input location first."""
        return self.send(self.request(prompt, **options))

    def send(self, body: Mapping[str, Any]) -> JobHandle:
        """Send one request body, checked against the contract first (a bad one is never sent)."""
        prepared = self._prepare(body)
        sent = self._sqs.send_message(QueueUrl=self.resources["RequestQueueUrl"], MessageBody=json.dumps(prepared))
        return JobHandle(self, prepared.get("request_id") or sent["MessageId"])

    def send_many(
        self, bodies: Iterable[Mapping[str, Any]], on_sent: Callable[[int], None] = lambda _: None
    ) -> tuple[list[JobHandle], list[Rejected]]:
        """Send request bodies in batches of ten; those that break the contract are returned, not sent."""
        handles: list[JobHandle] = []
        rejected: list[Rejected] = []
        batch: list[tuple[int, dict[str, Any]]] = []
        for index, body in enumerate(bodies):
            try:
                batch.append((index, self._prepare(body)))
            except RelayError as error:
                rejected.append(Rejected(index, str(error)))
            if len(batch) == SQS_BATCH:
                self._send_batch(batch, handles, rejected, on_sent)
                batch = []
        if batch:
            self._send_batch(batch, handles, rejected, on_sent)
        return handles, rejected

    def _send_batch(
        self,
        batch: list[tuple[int, dict[str, Any]]],
        handles: list[JobHandle],
        rejected: list[Rejected],
        on_sent: Callable[[int], None],
    ) -> None:
        entries = [{"Id": str(index), "MessageBody": json.dumps(body)} for index, body in batch]
        answer = self._sqs.send_message_batch(QueueUrl=self.resources["RequestQueueUrl"], Entries=entries)  # type: ignore[arg-type]
        bodies = dict(batch)
        for sent in answer.get("Successful", []):
            handles.append(JobHandle(self, bodies[int(sent["Id"])].get("request_id") or sent["MessageId"]))
        for failed in answer.get("Failed", []):
            rejected.append(Rejected(int(failed["Id"]), f"SQS refused it: {failed.get('Message', failed['Code'])}"))
        on_sent(len(batch))

    def _prepare(self, body: Mapping[str, Any]) -> dict[str, Any]:
        prepared = dict(body)
        for field in REFERENCE_FIELDS:
            if isinstance(prepared.get(field), list):
                prepared[field] = [self._uploaded(entry, field) for entry in prepared[field]]
        # Judged as the stack judges it, so a request it would fail is never sent (nor paid for).
        parsed = parse_request(json.dumps(prepared), "not-yet-sent", self.rules, self._earlier_request)
        if isinstance(parsed, InvalidRequest):
            raise RelayError(f"invalid request: {parsed.message}")
        return prepared

    def _earlier_request(self, request_id: str) -> VideoRequest | None:
        earlier = self._jobs.get(request_id)
        return earlier.request if earlier is not None else None

    def _uploaded(self, entry: object, field: str) -> object:
        """A local file's s3:// address in the stack's input location (uploaded now); others as given."""
        if not isinstance(entry, str) or entry.startswith(("s3://", "https://", "http://")):
            return entry
        path = Path(entry).expanduser()
        if not path.is_file():
            raise RelayError(f"{field}: {entry} is neither a local file nor an s3:// or https:// address")
        bucket, _, prefix = self.resources["InputLocation"].removeprefix("s3://").partition("/")
        key = f"{prefix}{uuid.uuid4().hex}/{path.name}"
        self._s3.upload_file(str(path), bucket, key)
        return f"s3://{bucket}/{key}"

    # --- following -------------------------------------------------------------------------

    def job(self, request_id: str) -> JobHandle:
        return JobHandle(self, request_id)

    def record(self, request_id: str) -> Job | None:
        """The job's record in the jobs table (None until the stack has read its message)."""
        return self._jobs.get(request_id)

    def jobs(self, *, state: JobState | str | None = None, since: datetime | str | None = None) -> list[Job]:
        """Jobs, newest first, optionally of one state (`"failed"` or `JobState.FAILED`) and
        changed since a moment (a datetime, an ISO 8601 time or an age such as `30m`, `6h`,
        `2d`); a table scan."""
        wanted = JobState(state) if state is not None else None
        moment = moment_since(since) if isinstance(since, str) else since
        found = [job for job in self._jobs.scan(updated_since=moment) if wanted is None or job.state == wanted]
        return sorted(found, key=lambda job: job.created_at, reverse=True)

    def line_places(self, jobs: Iterable[Job]) -> dict[str, LinePlace]:
        """Where each of `jobs` that waits in line stands (how many start before it) and why it
        waits, by request_id."""
        return self._line.places_of(jobs)

    def breakers(self) -> dict[str, BreakerState]:
        """Each model whose generations failed lately through no fault of their requests: its
        failures in a row, and whether its breaker is open (docs/reliability.md)."""
        return self._breakers.states()

    def cancel(self, request_id: str) -> Canceled:
        """End a request before it is submitted: one `video.failed` event (code `canceled`), and
        its message is never submitted, even if it comes later. Raises CannotCancel once the
        provider has it (or may have it): GeminiGen offers no cancel."""
        result = self._canceler.cancel(request_id)
        if not isinstance(result, Canceled):
            raise CannotCancel(result.reason)
        return result

    # --- fetching --------------------------------------------------------------------------

    def video(self, request_id: str) -> VideoEvent:
        """The job's `video.completed` event; raises when it has no video."""
        job = self.record(request_id)
        if job is None:
            raise JobNotFound(f"no job {request_id!r} in the jobs table")
        event = job.published_event
        if event is None or event.video is None:
            failed = job.final_event
            if failed is not None and failed.error is not None:
                raise NotArchived(f"job {request_id} failed ({failed.error.code}): {failed.error.message}")
            raise NotArchived(f"job {request_id} has no archived video yet (state {job.state})")
        return event

    def download(self, request_id: str, target: Path | str = ".") -> Path:
        """Fetch the video (S3's managed transfer) into `target` (a directory, existing or ending
        in `/`, or a file path) and check it against the event's SHA-256."""
        video = self.video(request_id).video
        assert video is not None
        path = _local_path(target, f"{request_id}.mp4")
        self._s3.download_file(video.bucket, video.key, str(path))
        with path.open("rb") as downloaded:
            digest = hashlib.file_digest(downloaded, "sha256")
        if digest.hexdigest() != video.sha256:
            path.unlink()
            raise RelayError(f"the download of {video.uri} does not match its sha256; removed")
        return path

    def thumbnail(self, request_id: str) -> ThumbnailObject:
        """Where the job's thumbnail is; raises when the provider offered none or it was not copied."""
        thumbnail = self.video(request_id).thumbnail
        if thumbnail is None:
            raise NotArchived(f"job {request_id} has no thumbnail (the provider offered none, or it was not copied)")
        return thumbnail

    def download_thumbnail(self, request_id: str, target: Path | str = ".") -> Path:
        """Fetch the job's thumbnail into `target` (a directory or a file path)."""
        thumbnail = self.thumbnail(request_id)
        path = _local_path(target, thumbnail.key.rsplit("/", 1)[-1])
        self._s3.download_file(thumbnail.bucket, thumbnail.key, str(path))
        if path.stat().st_size != thumbnail.size:
            path.unlink()
            raise RelayError(f"the download of {thumbnail.uri} is not {thumbnail.size} bytes; removed")
        return path

    def url(self, request_id: str, expires_in: int = 3600) -> str:
        """A presigned https link to the video, valid for `expires_in` seconds."""
        video = self.video(request_id).video
        assert video is not None
        return str(
            self._s3.generate_presigned_url(
                "get_object", Params={"Bucket": video.bucket, "Key": video.key}, ExpiresIn=expires_in
            )
        )

    # --- events ----------------------------------------------------------------------------

    def events(self, filter_policy: Mapping[str, list[Any]] | None = None) -> EventStream:
        """A temporary queue subscribed to the completion topic; use as a context manager."""
        return EventStream(self._sqs, self._sns, self.resources["CompletionTopicArn"], filter_policy)

    # --- dead letters ----------------------------------------------------------------------

    def dead_letter_queues(self) -> list[DeadLetterQueue]:
        return dead_letter_queues(self._sqs, self.resources)

    def redrive(self, queue: DeadLetterQueue, on_moved: Callable[[int], None] = lambda _: None) -> int:
        """Move every message of a dead-letter queue back to its source queue; returns how many."""
        return redrive(self._sqs, queue, on_moved)


def _local_path(target: Path | str, name: str) -> Path:
    """Where a download goes: `name` in `target` when it is a directory (existing, or ending in
    `/`), else `target` itself; its folder made."""
    into_directory = str(target).endswith("/") or Path(target).is_dir()
    path = Path(target) / name if into_directory else Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _utc_now() -> datetime:
    return datetime.now(UTC)


def moment_since(value: str) -> datetime:
    """An ISO 8601 moment (UTC unless it says otherwise), or an age such as 30s, 30m, 6h, 2d."""
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    if value[:-1].isdigit() and value[-1:] in units:
        return datetime.now(UTC) - timedelta(**{units[value[-1]]: int(value[:-1])})
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise ValueError(
            f"{value!r} is neither an ISO 8601 time (2026-11-23T10:00) nor an age (30m, 6h, 2d)"
        ) from error
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
