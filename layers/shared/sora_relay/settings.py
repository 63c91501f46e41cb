"""The functions' environment, as the template sets it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field

from sora_relay.domain.families import RequestRules
from sora_relay.domain.policy import Policy

# The template leaves the functions at this; the client writes a canceled job's index entry with it.
DEFAULT_POLL_SHARDS = 4


class Settings(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="ignore", populate_by_name=True)

    jobs_table_name: str = Field(alias="JOBS_TABLE_NAME")
    completion_topic_arn: str = Field(alias="COMPLETION_TOPIC_ARN")
    archive_bucket_name: str = Field(alias="ARCHIVE_BUCKET_NAME")
    archive_queue_url: str = Field(alias="ARCHIVE_QUEUE_URL")
    request_queue_url: str = Field(alias="REQUEST_QUEUE_URL")
    sweep_queue_url: str = Field(alias="SWEEP_QUEUE_URL")
    geminigen_base_url: str = Field(alias="GEMINIGEN_BASE_URL", default="https://api.geminigen.ai")
    geminigen_api_key_secret: str = Field(alias="GEMINIGEN_API_KEY_SECRET")
    archive_prefix: str = Field(alias="ARCHIVE_PREFIX", default="videos/")
    poll_interval_seconds: int = Field(alias="POLL_INTERVAL_SECONDS", default=30, ge=1)
    max_wait_minutes: int = Field(alias="MAX_WAIT_MINUTES", default=120, ge=1)
    allowed_media_hosts: str = Field(alias="ALLOWED_MEDIA_HOSTS", default="*.geminigen.ai")
    reference_buckets: str = Field(alias="REFERENCE_BUCKETS", default="")
    allowed_reference_hosts: str = Field(alias="ALLOWED_REFERENCE_HOSTS", default="*")
    input_location: str = Field(alias="INPUT_LOCATION", default="")
    submit_concurrency: int = Field(alias="SUBMIT_CONCURRENCY", default=10, ge=1, le=10)
    poll_shards: int = Field(alias="POLL_SHARDS", default=DEFAULT_POLL_SHARDS, ge=1, le=100)
    poll_sweep_window_seconds: int = Field(alias="POLL_SWEEP_WINDOW_SECONDS", default=50, ge=0, le=240)
    poll_concurrency: int = Field(alias="POLL_CONCURRENCY", default=16, ge=1, le=128)
    archive_part_size_mib: int = Field(alias="ARCHIVE_PART_SIZE_MIB", default=8, ge=5, le=512)
    archive_concurrency: int = Field(alias="ARCHIVE_CONCURRENCY", default=4, ge=1, le=32)
    # 0: no budget.
    daily_credit_budget: float = Field(alias="DAILY_CREDIT_BUDGET", default=0, ge=0)
    progress_events: bool = Field(alias="PROGRESS_EVENTS", default=False)
    finished_job_ttl_days: int = Field(alias="FINISHED_JOB_TTL_DAYS", default=30, ge=1)
    secret_cache_seconds: int = Field(alias="SECRET_CACHE_SECONDS", default=300, ge=0)
    # The ExtraModels and DefaultModel parameters (docs/models.md).
    extra_models: str = Field(alias="EXTRA_MODELS", default="")
    default_model: str = Field(alias="DEFAULT_MODEL", default="sora-2")
    # The FallbackModels and FallbackAfterCharged parameters (docs/models.md, "Fallback").
    fallback_models: str = Field(alias="FALLBACK_MODELS", default="")
    fallback_after_charged: bool = Field(alias="FALLBACK_AFTER_CHARGED", default=False)
    # The HTTP API and its webhooks (docs/api.md): the keys' table, each key's calls per minute,
    # the webhooks' signing secret (its name), whether callbacks may go to private addresses.
    api_keys_table_name: str = Field(alias="API_KEYS_TABLE_NAME", default="")
    api_calls_per_minute: int = Field(alias="API_CALLS_PER_MINUTE", default=120, ge=1)
    webhook_secret_name: str = Field(alias="WEBHOOK_SECRET_NAME", default="")
    webhook_queue_url: str = Field(alias="WEBHOOK_QUEUE_URL", default="")
    webhook_dead_letter_queue_url: str = Field(alias="WEBHOOK_DEAD_LETTER_QUEUE_URL", default="")
    callbacks_allow_private: bool = Field(alias="CALLBACKS_ALLOW_PRIVATE", default=False)
    # The line (docs/line.md): the account's places the stack may hold, and how long a request may wait.
    max_active_generations: int = Field(alias="MAX_ACTIVE_GENERATIONS", default=5, ge=1, le=1000)
    max_line_hours: int = Field(alias="MAX_LINE_HOURS", default=48, ge=1, le=336)
    # Lambda's own variable.
    function_memory_mib: int = Field(alias="AWS_LAMBDA_FUNCTION_MEMORY_SIZE", default=512, ge=128)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        return cls.model_validate(dict(os.environ if environ is None else environ))

    def request_rules(self) -> RequestRules:
        """The catalogue with the models the operator allows, the model of a request that names
        none, and the fallbacks of one that names none."""
        return RequestRules.of(
            self.extra_models,
            self.default_model,
            self.fallback_models,
            callbacks_allow_private=self.callbacks_allow_private,
        )

    def policy(self) -> Policy:
        return Policy(
            poll_interval=timedelta(seconds=self.poll_interval_seconds),
            max_wait=timedelta(minutes=self.max_wait_minutes),
            max_line=timedelta(hours=self.max_line_hours),
            archive_prefix=self.archive_prefix,
        )
