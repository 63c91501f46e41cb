"""Lambda's parts for the services: adapters on boto3 and httpx made from the environment, once
per container (clients are reused across invocations); `services/assembly.py` makes the
services from them, as it does from the tests' fakes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from sora_relay.adapters.breakers import DynamoBreakers
from sora_relay.adapters.credit_ledger import DynamoCreditLedger
from sora_relay.adapters.dynamodb import DynamoJobStore
from sora_relay.adapters.line import DynamoLine
from sora_relay.adapters.messaging import (
    SnsEventPublisher,
    SqsArchiveQueue,
    SqsRequestQueue,
    SqsSweepQueue,
    SqsWebhookQueue,
)
from sora_relay.domain.ports import Clock
from sora_relay.domain.request import MAX_FILE_BYTES, MAX_REFERENCES_BYTES
from sora_relay.observability import PowertoolsMetrics
from sora_relay.seams import observed, seams, session_as, utc_now
from sora_relay.services.assembly import Services, Tuning
from sora_relay.settings import Settings

if TYPE_CHECKING:
    # Imported where they are made: a function's cold start loads only the parts it uses (the
    # poller never downloads; only the archive writes videos; the API never calls the provider).
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from sora_relay.adapters.geminigen import GeminiGenClient
    from sora_relay.adapters.key_videos import DynamoKeyVideos
    from sora_relay.adapters.keys import DynamoKeys
    from sora_relay.adapters.media.archive import S3VideoArchive
    from sora_relay.adapters.media.references import ReferenceFetcher
    from sora_relay.adapters.objects import S3Objects
    from sora_relay.adapters.webhooks import HttpWebhookSender, SqsDeadLetters
    from sora_relay.services.archive import ArchiveService
    from sora_relay.services.poll.service import PollService
    from sora_relay.services.submit.service import SubmitService
    from sora_relay.services.videos import VideoApi
    from sora_relay.services.webhooks import Webhooks

# The SDK's standard retry mode: throttling and transient faults are retried with backoff.
AWS_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8})
# What a submit container needs besides the reference files it holds (runtime, libraries, a batch).
_SUBMIT_BASE_MIB = 256


@cache
def settings() -> Settings:
    return Settings.from_env()


@cache
def _client_as(service: str, session: boto3.Session) -> Any:
    # One connection per worker thread (the poller has two per status call it may make at
    # once): with fewer (the SDK keeps 10), calls beyond them open a new connection each,
    # and a TLS handshake costs more than the call.
    workers = max(2 * settings().poll_concurrency, settings().submit_concurrency, settings().archive_concurrency)
    config = AWS_CONFIG.merge(Config(max_pool_connections=max(workers, 10)))
    return session.client(service, config=config)  # type: ignore[call-overload]


_api_key_lock = threading.Lock()


class _FromEnvironment:
    """The services' parts as Lambda has them: adapters on boto3 and httpx, each made from the
    settings when first needed, calling AWS with `credentials` (None: the environment's)."""

    def __init__(self, settings: Settings, credentials: tuple[str, str, str] | None) -> None:
        self._settings = settings
        self._credentials = credentials
        self.metrics = PowertoolsMetrics()

    def _client(self, service: str) -> Any:
        return _client_as(service, session_as(self._credentials))

    @cached_property
    def _secrets(self) -> SecretsProvider:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        return SecretsProvider(boto3_client=self._client("secretsmanager"))

    def _api_key(self) -> str:
        # Cached by Powertools for max_age; never logged. One thread fetches it: without the
        # lock, a sweep's first status calls would each make a client and fetch it at once.
        name, max_age = self._settings.geminigen_api_key_secret, self._settings.secret_cache_seconds
        with _api_key_lock:
            secret = self._secrets.get(name, max_age=max_age)
        return secret.decode() if isinstance(secret, bytes) else str(secret)

    @property
    def clock(self) -> Clock:
        return seams.clock

    @property
    def sleep(self) -> Callable[[float], None]:
        return seams.sleep

    @cached_property
    def tuning(self) -> Tuning:
        s = self._settings
        # As many requests' reference files at once as the function's memory holds at their largest.
        # A request's references: at most MAX_REFERENCES_BYTES, and the file read when it is passed.
        largest_mib = (MAX_REFERENCES_BYTES + MAX_FILE_BYTES) // (1024 * 1024)
        return Tuning(
            policy=s.policy(),
            shards=s.poll_shards,
            daily_credit_budget=s.daily_credit_budget or None,
            max_active_generations=s.max_active_generations,
            progress_events=s.progress_events,
            poll_concurrency=s.poll_concurrency,
            poll_window=timedelta(seconds=s.poll_sweep_window_seconds),
            reference_slots=max(1, (s.function_memory_mib - _SUBMIT_BASE_MIB) // largest_mib),
            rules=s.request_rules(),
            fallback_after_charged=s.fallback_after_charged,
            input_location=s.input_location,
            api_calls_per_minute=s.api_calls_per_minute,
        )

    @cached_property
    def store(self) -> DynamoJobStore:
        s = self._settings
        finished_ttl = timedelta(days=s.finished_job_ttl_days)
        return DynamoJobStore(
            self._client("dynamodb"), s.jobs_table_name, shards=s.poll_shards, finished_ttl=finished_ttl
        )

    @cached_property
    def provider(self) -> GeminiGenClient:
        from sora_relay.adapters.geminigen import GeminiGenClient, make_http_client, make_submit_client

        base_url = self._settings.geminigen_base_url
        submit_client = lambda: observed(make_submit_client())  # noqa: E731
        return GeminiGenClient(observed(make_http_client()), base_url, self._api_key, submit_client=submit_client)

    @cached_property
    def files(self) -> ReferenceFetcher:
        from sora_relay.adapters.media.client import vetted_client
        from sora_relay.adapters.media.policy import ReferencePolicy
        from sora_relay.adapters.media.references import ReferenceFetcher

        s = self._settings
        policy = ReferencePolicy.parse(s.reference_buckets, s.allowed_reference_hosts, input_location=s.input_location)
        return ReferenceFetcher(self._client("s3"), observed(vetted_client(policy)), policy, max_bytes=MAX_FILE_BYTES)

    @cached_property
    def publisher(self) -> SnsEventPublisher:
        return SnsEventPublisher(self._client("sns"), self._settings.completion_topic_arn)

    @cached_property
    def request_queue(self) -> SqsRequestQueue:
        return SqsRequestQueue(self._client("sqs"), self._settings.request_queue_url)

    @cached_property
    def archive_queue(self) -> SqsArchiveQueue:
        return SqsArchiveQueue(self._client("sqs"), self._settings.archive_queue_url)

    @cached_property
    def sweep_queue(self) -> SqsSweepQueue:
        return SqsSweepQueue(self._client("sqs"), self._settings.sweep_queue_url)

    @cached_property
    def archive(self) -> S3VideoArchive:
        from sora_relay.adapters.media.archive import S3VideoArchive
        from sora_relay.adapters.media.client import vetted_client
        from sora_relay.adapters.media.policy import MediaPolicy

        s = self._settings
        media = observed(vetted_client(MediaPolicy.parse(s.allowed_media_hosts, s.geminigen_base_url)))
        part_size = s.archive_part_size_mib * 1024 * 1024
        return S3VideoArchive(
            self._client("s3"), media, s.archive_bucket_name, part_size=part_size, concurrency=s.archive_concurrency
        )

    @cached_property
    def ledger(self) -> DynamoCreditLedger:
        return DynamoCreditLedger(self._client("dynamodb"), self._settings.jobs_table_name)

    @cached_property
    def line_store(self) -> DynamoLine:
        return DynamoLine(self._client("dynamodb"), self._settings.jobs_table_name)

    @cached_property
    def breaker_store(self) -> DynamoBreakers:
        return DynamoBreakers(self._client("dynamodb"), self._settings.jobs_table_name)

    @cached_property
    def keys(self) -> DynamoKeys:
        from sora_relay.adapters.keys import DynamoKeys

        return DynamoKeys(self._client("dynamodb"), self._settings.api_keys_table_name)

    @cached_property
    def key_videos(self) -> DynamoKeyVideos:
        from sora_relay.adapters.key_videos import DynamoKeyVideos

        return DynamoKeyVideos(self._client("dynamodb"), self._settings.jobs_table_name)

    @cached_property
    def objects(self) -> S3Objects:
        from sora_relay.adapters.objects import S3Objects

        return S3Objects(self._client("s3"))

    @cached_property
    def webhook_sender(self) -> HttpWebhookSender:
        from sora_relay.adapters.webhooks import HttpWebhookSender, webhook_client

        return HttpWebhookSender(observed(webhook_client(self._settings.callbacks_allow_private)))

    def webhook_key(self) -> bytes:  # cached by Powertools for max_age, as the provider's key
        name, max_age = self._settings.webhook_secret_name, self._settings.secret_cache_seconds
        secret = self._secrets.get(name, max_age=max_age)
        return secret if isinstance(secret, bytes) else str(secret).encode()

    @cached_property
    def webhook_dead_letters(self) -> SqsDeadLetters:
        from sora_relay.adapters.webhooks import SqsDeadLetters

        return SqsDeadLetters(self._client("sqs"), self._settings.webhook_dead_letter_queue_url)

    @cached_property
    def webhook_queue(self) -> SqsWebhookQueue:
        return SqsWebhookQueue(self._client("sqs"), self._settings.webhook_queue_url)


@cache  # one per identity, as the sessions
def _parts_as(credentials: tuple[str, str, str] | None) -> _FromEnvironment:
    return _FromEnvironment(settings(), credentials)


@cache
def _services_as(credentials: tuple[str, str, str] | None) -> Services:
    return Services(_parts_as(credentials))


def submit_service() -> SubmitService:
    return _services_as(seams.aws_credentials).submitter


def poll_service() -> PollService:
    return _services_as(seams.aws_credentials).poller


def archive_service() -> ArchiveService:
    return _services_as(seams.aws_credentials).archiver


def video_api() -> VideoApi:
    return _services_as(seams.aws_credentials).videos


def webhooks() -> Webhooks:
    return _services_as(seams.aws_credentials).webhooks


def webhook_queue() -> SqsWebhookQueue:
    return _parts_as(seams.aws_credentials).webhook_queue


def request_queue() -> SqsRequestQueue:
    return _parts_as(seams.aws_credentials).request_queue


def archive_queue() -> SqsArchiveQueue:
    return _parts_as(seams.aws_credentials).archive_queue


@cache
def submit_workers() -> ThreadPoolExecutor:
    """The threads a batch's records are submitted on, at most SUBMIT_CONCURRENCY at once."""
    return ThreadPoolExecutor(max_workers=settings().submit_concurrency, thread_name_prefix="submit")


def reset(
    *,
    clock: Clock | None = None,
    sleep: Callable[[float], None] | None = None,
    on_outbound_call: Callable[[str], None] | None = None,
    on_aws_request: Callable[[str, dict[str, Any]], None] | None = None,
    on_aws_answer: Callable[[str, dict[str, Any]], None] | None = None,
) -> None:
    """Forget every cached service and client, for a new environment (tests, local runs).

    `clock` replaces the services' clock and `sleep` their pauses (a virtual clock advances);
    `on_outbound_call` is told of every AWS API call and HTTP request the services make before
    it goes out (a fault drill raises from it); `on_aws_request` of every AWS call with its
    parameters, and `on_aws_answer` of every AWS answer (a benchmark counts what was written and
    read). AWS is called with the environment's credentials until `run_as`."""
    seams.clock = clock or utc_now
    seams.sleep = sleep or time.sleep
    seams.on_outbound_call = on_outbound_call
    seams.on_aws_request = on_aws_request
    seams.on_aws_answer = on_aws_answer
    seams.aws_credentials = None
    rebuild()


def run_as(aws_access_key_id: str, aws_secret_access_key: str, aws_session_token: str) -> None:
    """AWS is called with these credentials from now on: a local stack runs each function as its role."""
    seams.aws_credentials = (aws_access_key_id, aws_secret_access_key, aws_session_token)


def rebuild() -> None:
    """Forget every cached service and client, keeping the seams (the environment changed)."""
    for factory in (settings, session_as, _client_as, _parts_as, _services_as, submit_workers):
        factory.cache_clear()
