"""Hookline's one typed settings object, read from ``HOOKLINE_*`` environment variables."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from hookline.config.event_loop import EventLoopName
from hookline.contracts.retry_settings import RetrySettings
from hookline.contracts.signing import decode_secret

MIN_PRODUCTION_API_KEY_LENGTH = 32
"""Production mode refuses admin keys (``HOOKLINE_API_KEYS``) shorter than this: an admin key
opens every app, and a short one can be guessed."""

TASK_QUEUE_POLL_SHARE = 0.8
"""Of a worker's workflow-task polls, the share on the task queue rather than the worker's
sticky queue: a delivery that succeeds at once is a single workflow task, from the queue."""


class Settings(BaseSettings):
    """Everything Hookline's processes can be configured with.

    Read once at start (``Settings()``) and passed down; nothing else reads the environment.
    """

    # hide_input_in_errors: a bad setting must not print the values (API keys, secrets) around it.
    model_config = SettingsConfigDict(
        env_prefix="HOOKLINE_",
        env_nested_delimiter="__",
        env_parse_none_str="none",
        hide_input_in_errors=True,
    )

    data_dir: Path = Path(".hookline")
    """Where the embedded defaults keep their files (SQLite registry, dev server database)."""

    database_url: str | None = None
    """SQLAlchemy async URL of the registry; default: SQLite file ``{data_dir}/hookline.db``."""

    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list, repr=False)
    """Bearer keys accepted by the API, comma-separated in the environment."""

    mode: Literal["development", "production"] = "development"
    """``production`` refuses to start without ``secrets_keys`` (no silent plaintext)."""
    payload_keys: Annotated[list[str], NoDecode] = Field(default_factory=list, repr=False)
    """Keys that encrypt what Hookline stores in Temporal (event bodies, URLs, memos,
    summaries), ``<id>:<base64 of 32 bytes>``, comma-separated, current first; every worker
    and API process needs the same. Unset stores them in clear. ``hookline secrets-key``
    makes one."""
    codec_cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:8233", "http://127.0.0.1:8233"]
    )
    """Origins (the Temporal UI's) allowed to call the codec endpoints, comma-separated."""
    allowed_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """CIDR networks webhooks may go to even when internal (comma-separated), e.g. a
    receiver on 10.20.0.0/16. Production otherwise refuses every non-public address and
    requires HTTPS; development allows loopback."""
    secrets_keys: Annotated[list[str], NoDecode] = Field(default_factory=list, repr=False)
    """Keys that encrypt signing secrets at rest, ``<id>:<base64 of 32 bytes>``, comma-separated,
    current first (older ones still decrypt). Make one with ``hookline secrets-key``. In
    development a key is made once and kept in ``{data_dir}/secrets-key``."""

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65535)

    log_format: Literal["json", "text"] | None = None
    """``json`` (one object per line) or ``text``; default: json in production, text in
    development."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_tls: bool | None = None
    """TLS to Temporal: ``None`` turns it on when ``temporal_api_key`` is set."""
    temporal_api_key: str | None = Field(default=None, repr=False)
    """An API key for Temporal Cloud or a cluster that asks for one."""
    temporal_grpc_compression: Literal["auto", "gzip", "off"] = "auto"
    """Compression of the gRPC messages to and from Temporal: ``auto`` is gzip when
    ``temporal_api_key`` is set (Temporal Cloud, across the internet), else off. The SDK
    always compresses, with a fresh compressor for every message of a few kilobytes: next
    to the cluster that is CPU spent (a fifth of a worker's instructions) to save nothing."""
    task_queue: str = "hookline-deliveries"

    max_payload_bytes: int = Field(default=256 * 1024, ge=1)
    """Largest accepted event payload, as serialized JSON (413 above)."""
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Largest accepted HTTP request body for any API call (413 above)."""
    max_url_length: int = Field(default=2048, ge=16)
    max_event_types_per_endpoint: int = Field(default=100, ge=1)
    max_headers_per_endpoint: int = Field(default=20, ge=0)

    retry: RetrySettings = Field(default_factory=RetrySettings)
    """Default delivery retry schedule; endpoints may override any field."""
    attempt_timeout_s: float = Field(default=30.0, gt=0, le=300)
    """How long one POST may take, connect to last byte, before the attempt counts as failed."""
    max_response_bytes: int = Field(default=64 * 1024, ge=1024)
    """How much of a receiver's response body an attempt reads before closing the connection
    (the attempt log keeps the first 1 KiB of it)."""
    attempt_log_retention_days: float = Field(default=30, gt=0)
    """How long the attempt log keeps an attempt; older ones are purged once a day."""

    auto_disable_after_s: float = Field(default=5 * 86_400, gt=0)
    """An endpoint whose deliveries have all failed for this long is disabled (410 Gone
    disables it at once)."""
    operator_webhook_url: str | None = None
    """Where Hookline sends its own signed events (endpoint.disabled, delivery.failed,
    endpoint.recovered), through the same delivery machinery; unset sends none."""
    operator_webhook_secret: str | None = Field(default=None, repr=False)
    """The ``whsec_`` secret those events are signed with (required with the URL)."""

    worker_metrics_address: str | None = None
    """Where a worker serves Prometheus metrics (Temporal SDK's and Hookline's) at
    ``/metrics``, e.g. ``127.0.0.1:9464``; unset serves none."""

    worker_max_concurrent_attempts: int = Field(default=200, ge=1)
    """How many POSTs one worker process has in flight at once."""
    worker_pollers: int = Field(default=40, ge=2, le=200)
    """Long polls one worker process keeps open for each kind of task: workflow tasks (four
    in five on the task queue, the rest on the worker's sticky queue) and activity tasks
    (retries, which come in floods when a receiver recovers). The SDK's default of five falls
    behind a burst of events: deliveries stall while the API starts them, then drain slowly
    from a task queue split into partitions. Temporal's frontend allows 1,200 polls per
    namespace at once by default (``frontend.namespaceCount``): keep workers times polls
    under it."""
    event_loop: EventLoopName = "auto"
    """The event loop of ``hookline worker``, ``api`` and ``dev``: ``uvloop`` (libuv, installed
    with Hookline except on Windows) costs them about a tenth less CPU per delivery than
    ``asyncio``, the standard library's; ``auto`` takes uvloop where it is installed."""
    worker_graceful_shutdown_s: float = Field(default=35.0, ge=0)
    """On shutdown, how long in-flight attempts get to finish before they are handed back."""

    api_rate_limit_per_s: float | None = Field(default=100.0, gt=0)
    """Requests per second one API key may make, per API process (429 with Retry-After past
    it); ``none`` turns the limit off."""
    api_rate_limit_burst: int = Field(default=200, ge=1)
    """Requests a key may make at once before the rate applies."""
    api_auth_failures_per_s: float = Field(default=1.0, gt=0)
    """Failed authentications one client address (IPv4, or IPv6 /64) may make per second, per
    API process (a token bucket). Past it, a request from that address whose key needs a
    registry lookup answers 429 with Retry-After, without the lookup, until the bucket refills;
    keys of ``api_keys`` need no lookup and always pass, and a key found costs nothing."""
    api_auth_failure_burst: int = Field(default=20, ge=1)
    """Failed authentications a client address may make at once before that rate applies."""
    api_header_read_timeout_s: float = Field(default=10.0, gt=0, le=300)
    """How long a client may take to send a request's line and headers, from when the
    connection opens (or, kept alive, from the end of the previous response); past it the
    connection is closed. An idle kept-alive connection is closed after this time too: a
    proxy that reuses connections to the API needs a shorter idle timeout."""
    api_body_read_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    """How long a client may take to send a request's body; past it the API answers
    ``408 request_timeout`` and closes the connection."""
    metrics_count_cache_s: float = Field(default=5.0, ge=0, le=300)
    """How long the API's ``/metrics`` reuses its count of deliveries backing off (a query
    to Temporal's visibility store) before counting again; 0 counts at every scrape."""
    metrics_max_event_types: int = Field(default=50, ge=0, le=10_000)
    """Distinct ``event_type`` label values a worker process gives its metrics; event types
    seen after that many are counted under ``other`` (clients choose event types, so the
    label must be bounded)."""
    endpoint_max_concurrent_attempts: int = Field(default=10, ge=1)
    """POSTs to one endpoint in flight at once, per worker process (more wait their turn)."""
    fan_out_inline_max: int = Field(default=20, ge=0)
    """An event for at most this many endpoints has its deliveries started by the API before
    it answers; one for more is answered after a single start, of a fan-out workflow that
    starts the deliveries within moments (``fan-out:{app}:{event}`` in the Temporal UI)."""
    endpoint_cache_ttl_s: float = Field(default=5.0, ge=0, le=300)
    """How long a worker uses an endpoint's configuration (URL, headers, secrets, state)
    before reading it again: changes made through the API reach attempts within this time.
    0 reads it for every attempt. With the registry unreachable, workers go on with the last
    configuration they read, however old. An API process keeps each app's list of endpoints
    (which endpoints an event goes to) as long, unless it made a change to them itself."""

    list_page_size: int = Field(default=50, ge=1, le=1000)
    """Default page size of list endpoints (``?limit=`` may ask for up to 1000)."""
    recovery_rate_per_s: float = Field(default=10.0, gt=0, le=1000)
    """How many failed deliveries a bulk recovery retries per second, at most."""

    @field_validator(
        "api_keys",
        "secrets_keys",
        "allowed_networks",
        "payload_keys",
        "codec_cors_origins",
        mode="before",
    )
    @classmethod
    def _split_api_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    @model_validator(mode="after")
    def _check_admin_keys(self) -> Settings:
        if self.mode == "production":
            short = sum(1 for key in self.api_keys if len(key) < MIN_PRODUCTION_API_KEY_LENGTH)
            if short:
                # Never the keys themselves: only how many are too short.
                raise ValueError(
                    f"{short} of HOOKLINE_API_KEYS is shorter than "
                    f"{MIN_PRODUCTION_API_KEY_LENGTH} characters: in production an admin key "
                    "must be long enough not to be guessed (make one with: openssl rand -hex 32)"
                )
        return self

    @model_validator(mode="after")
    def _check_retry(self) -> Settings:
        self.retry.check()
        if self.operator_webhook_url and not self.operator_webhook_secret:
            raise ValueError("operator_webhook_url needs operator_webhook_secret (whsec_...)")
        if self.operator_webhook_secret:
            decode_secret(self.operator_webhook_secret)  # InvalidSecretError is a ValueError
        return self

    @field_validator("allowed_networks")
    @classmethod
    def _check_networks(cls, value: list[str]) -> list[str]:
        for network in value:
            ipaddress.ip_network(network, strict=False)  # ValueError names the bad one
        return value

    @property
    def resolved_log_format(self) -> Literal["json", "text"]:
        """The log format, defaulting by mode."""
        if self.log_format is not None:
            return self.log_format
        return "json" if self.mode == "production" else "text"

    @property
    def resolved_grpc_compression(self) -> Literal["gzip", "off"]:
        """gRPC compression to Temporal, defaulting to gzip for an API key (Temporal Cloud)."""
        if self.temporal_grpc_compression != "auto":
            return self.temporal_grpc_compression
        return "gzip" if self.temporal_api_key else "off"

    @property
    def resolved_database_url(self) -> str:
        """The registry URL, defaulting to a SQLite file under ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'hookline.db').resolve()}"
