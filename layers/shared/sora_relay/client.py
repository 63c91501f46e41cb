"""The Python client: send requests to a deployed stack, follow them, fetch their videos.

    relay = Relay.from_stack("sora-relay")
    job = relay.submit("A lighthouse at dawn", model="sora-2-pro")
    event = job.wait()
    job.download("out/")

It finds the stack's resources from its CloudFormation outputs, so it works the same against
AWS and against anything that speaks its API (the local stack, through `AWS_ENDPOINT_URL`).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from sora_relay.adapters.dynamodb import DynamoJobStore
from sora_relay.adapters.messaging import SnsEventPublisher
from sora_relay.events import ThumbnailObject, VideoEvent
from sora_relay.jobs import Job, JobState
from sora_relay.request import InvalidRequest, parse_request
from sora_relay.services.cancel import Canceled, CancelService
from sora_relay.services.lifecycle import Finisher
from sora_relay.services.policy import Policy
from sora_relay.settings import DEFAULT_POLL_SHARDS

# The outputs the client reads; the template declares each.
_REQUIRED_OUTPUTS = ("RequestQueueUrl", "CompletionTopicArn", "ArchiveBucketName", "JobsTableName", "InputLocation")
# Each dead-letter queue and the queue its messages came from.
DEAD_LETTER_QUEUES = {
    "requests": ("RequestDeadLetterQueueUrl", "RequestQueueUrl"),
    "archive": ("ArchiveDeadLetterQueueUrl", "ArchiveQueueUrl"),
    "sweeps": ("SweepDeadLetterQueueUrl", "SweepQueueUrl"),
}
_SQS_BATCH = 10


class RelayError(Exception):
    """Something the user can act on: a missing stack, an invalid request, an unknown job."""


class StackNotFound(RelayError):
    pass


class JobNotFound(RelayError):
    pass


class WaitTimedOut(RelayError):
    pass


class NotArchived(RelayError):
    """The job has no video (yet, or ever: it failed), or no thumbnail."""


class CannotCancel(RelayError):
    """The request reached the provider (or may have): it runs to its end."""


class _Uncounted:
    """The client counts no metrics: the stack's functions do."""

    def count(self, name: str, value: float = 1, unit: str = "Count", **dimensions: str) -> None:
        return None


@dataclass(frozen=True)
class StackResources:
    outputs: Mapping[str, str]

    @classmethod
    def of(cls, outputs: Mapping[str, str]) -> StackResources:
        missing = [name for name in _REQUIRED_OUTPUTS if name not in outputs]
        if missing:
            raise StackNotFound(f"the stack has no output {', '.join(missing)}: is it a sora-relay stack?")
        return cls(dict(outputs))

    def __getitem__(self, name: str) -> str:
        return self.outputs[name]


@dataclass(frozen=True)
class DeadLetterQueue:
    name: str
    url: str
    source_url: str
    depth: int


@dataclass(frozen=True)
class Rejected:
    """A line or request the client refused before sending: it never reached the queue."""

    index: int
    reason: str


class Relay:
    def __init__(self, resources: StackResources, session: boto3.Session | None = None) -> None:
        self.resources = resources
        session = session or boto3.Session()
        self._sqs = session.client("sqs")
        self._sns = session.client("sns")
        self._s3 = session.client("s3")
        self._jobs = DynamoJobStore(
            session.client("dynamodb"),
            resources["JobsTableName"],
            shards=DEFAULT_POLL_SHARDS,
            # A canceled job is kept as long as the stack keeps any (its message may come late).
            finished_ttl=timedelta(days=int(resources.outputs.get("FinishedJobTtlDays", "30"))),
        )
        publisher = SnsEventPublisher(self._sns, resources["CompletionTopicArn"])
        finisher = Finisher(store=self._jobs, publisher=publisher, metrics=_Uncounted(), policy=Policy())
        self._canceler = CancelService(store=self._jobs, finisher=finisher, clock=_utc_now)

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

    # --- sending ---------------------------------------------------------------------------

    def request(
        self,
        prompt: str,
        *,
        model: str | None = None,
        duration: int | None = None,
        resolution: str | None = None,
        aspect_ratio: str | None = None,
        files: Iterable[str] = (),
        metadata: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """A request body from arguments, unset ones left to the stack's defaults."""
        fields = {
            "request_id": request_id,
            "prompt": prompt,
            "model": model,
            "duration": duration,
            "resolution": resolution,
            "aspect_ratio": aspect_ratio,
            "files": list(files) or None,
            "metadata": dict(metadata) if metadata else None,
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
            if len(batch) == _SQS_BATCH:
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
        if isinstance(prepared.get("files"), list):
            prepared["files"] = [self._uploaded(entry) for entry in prepared["files"]]
        # Judged as the stack judges it, so a request it would fail is never sent (nor paid for).
        parsed = parse_request(json.dumps(prepared), message_id="not-yet-sent")
        if isinstance(parsed, InvalidRequest):
            raise RelayError(f"invalid request: {parsed.message}")
        return prepared

    def _uploaded(self, entry: object) -> object:
        """A local file's s3:// address in the stack's input location (uploaded now); others as given."""
        if not isinstance(entry, str) or entry.startswith(("s3://", "https://", "http://")):
            return entry
        path = Path(entry).expanduser()
        if not path.is_file():
            raise RelayError(f"files: {entry} is neither a local file nor an s3:// or https:// address")
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

    def jobs(self, *, state: JobState | None = None, since: datetime | None = None) -> list[Job]:
        """Jobs, newest first, optionally of one state and changed since a moment (a table scan)."""
        found = [job for job in self._jobs.scan(updated_since=since) if state is None or job.state is state]
        return sorted(found, key=lambda job: job.created_at, reverse=True)

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
        digest = hashlib.sha256()
        with path.open("rb") as downloaded:
            for chunk in iter(lambda: downloaded.read(1 << 20), b""):
                digest.update(chunk)
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
        queues = []
        for name, (dead_letter_output, source_output) in DEAD_LETTER_QUEUES.items():
            url = self.resources.outputs.get(dead_letter_output)
            if url is None:
                continue
            attributes = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
                "Attributes"
            ]
            depth = int(attributes["ApproximateNumberOfMessages"])
            queues.append(DeadLetterQueue(name, url, self.resources[source_output], depth))
        return queues

    def redrive(self, queue: DeadLetterQueue, on_moved: Callable[[int], None] = lambda _: None) -> int:
        """Move every message of a dead-letter queue back to its source queue; returns how many.

        By hand, not SQS's StartMessageMoveTask: a moved message gets a new message id, and a
        request without its own `request_id` is known by its message id, so each request is
        given its original id first (a move must not become a second, paid job)."""
        moved = 0
        while True:
            messages = self._sqs.receive_message(
                QueueUrl=queue.url, MaxNumberOfMessages=_SQS_BATCH, VisibilityTimeout=60, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                return moved
            entries = [
                {"Id": str(index), "MessageBody": _with_request_id(message["Body"], message["MessageId"])}
                if queue.name == "requests"
                else {"Id": str(index), "MessageBody": message["Body"]}
                for index, message in enumerate(messages)
            ]
            sent = self._sqs.send_message_batch(QueueUrl=queue.source_url, Entries=entries)  # type: ignore[arg-type]
            done = [messages[int(entry["Id"])] for entry in sent.get("Successful", [])]
            if done:
                self._sqs.delete_message_batch(
                    QueueUrl=queue.url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
                )
            moved += len(done)
            on_moved(len(done))
            if sent.get("Failed"):
                raise RelayError(f"SQS refused {len(sent['Failed'])} messages; they stay in {queue.name}")


def _local_path(target: Path | str, name: str) -> Path:
    """Where a download goes: `name` in `target` when it is a directory (existing, or ending in
    `/`), else `target` itself; its folder made."""
    into_directory = str(target).endswith("/") or Path(target).is_dir()
    path = Path(target) / name if into_directory else Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _with_request_id(body: str, message_id: str) -> str:
    try:
        parsed = json.loads(body)
    except ValueError:
        return body  # an unreadable body stays as it was: it fails again, as invalid_request
    if isinstance(parsed, dict) and "request_id" not in parsed:
        parsed["request_id"] = message_id
        return json.dumps(parsed)
    return body


class JobHandle:
    """One request, by its request_id."""

    def __init__(self, relay: Relay, request_id: str) -> None:
        self.relay = relay
        self.request_id = request_id

    def __repr__(self) -> str:
        return f"JobHandle({self.request_id!r})"

    def record(self) -> Job | None:
        return self.relay.record(self.request_id)

    def wait(
        self,
        timeout: float = 3600,
        *,
        every: float = 2.0,
        on_update: Callable[[Job | None], None] = lambda _: None,
    ) -> VideoEvent:
        """Read the job's record every `every` seconds until its final event; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.record()
            on_update(job)
            if job is not None and job.published_event is not None:
                return job.published_event
            if time.monotonic() >= deadline:
                state = job.state if job is not None else "not yet read by the stack, or held by the credit budget"
                raise WaitTimedOut(f"job {self.request_id} has no final event after {timeout:.0f} s ({state})")
            time.sleep(every)

    def download(self, target: Path | str = ".") -> Path:
        return self.relay.download(self.request_id, target)

    def cancel(self) -> Canceled:
        return self.relay.cancel(self.request_id)

    def url(self, expires_in: int = 3600) -> str:
        return self.relay.url(self.request_id, expires_in)


class EventStream:
    """The completion topic's events from now on, through a queue of its own that is removed on exit."""

    def __init__(
        self, sqs: Any, sns: Any, topic_arn: str, filter_policy: Mapping[str, list[Any]] | None = None
    ) -> None:
        self._sqs = sqs
        self._sns = sns
        self._topic_arn = topic_arn
        self._filter_policy = filter_policy
        self._queue_url: str | None = None
        self._subscription_arn: str | None = None

    def __enter__(self) -> EventStream:
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _open(self) -> None:
        name = f"sora-relay-events-{uuid.uuid4().hex[:12]}"
        self._queue_url = self._sqs.create_queue(QueueName=name, Attributes={"SqsManagedSseEnabled": "true"})[
            "QueueUrl"
        ]
        arn = self._sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        # Only this topic may send to the queue.
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": self._topic_arn}},
                }
            ],
        }
        self._sqs.set_queue_attributes(QueueUrl=self._queue_url, Attributes={"Policy": json.dumps(policy)})
        attributes = {"RawMessageDelivery": "true"}
        if self._filter_policy:
            attributes["FilterPolicy"] = json.dumps(self._filter_policy)
        self._subscription_arn = self._sns.subscribe(
            TopicArn=self._topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attributes, ReturnSubscriptionArn=True
        )["SubscriptionArn"]

    def receive(self, wait_seconds: int = 1) -> list[VideoEvent]:
        """The events that arrived, waiting up to `wait_seconds` (SQS long polling) for the first."""
        assert self._queue_url is not None, "use the stream as a context manager"
        messages = self._sqs.receive_message(
            QueueUrl=self._queue_url, MaxNumberOfMessages=_SQS_BATCH, WaitTimeSeconds=wait_seconds
        ).get("Messages", [])
        if messages:
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
        return [VideoEvent.model_validate_json(message["Body"]) for message in messages]

    def close(self) -> None:
        if self._subscription_arn is not None:
            self._sns.unsubscribe(SubscriptionArn=self._subscription_arn)
            self._subscription_arn = None
        if self._queue_url is not None:
            self._sqs.delete_queue(QueueUrl=self._queue_url)
            self._queue_url = None
