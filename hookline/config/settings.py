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
    # use_attribute_docstrings: the docstrings below are the field descriptions that
    # docs/configuration.md is generated from (python -m hookline.config.reference).
    model_config = SettingsConfigDict(
        env_prefix="HOOKLINE_",
        env_nested_delimiter="__",
        env_parse_none_str="none",
        hide_input_in_errors=True,
        use_attribute_docstrings=True,
    )

    data_dir: Path = Path(".hookline")
    """Where Hookline keeps its files: the default SQLite registry and the development secrets
    key (and, for ``hookline dev``, the dev server's database and the API key). ``hookline dev
    --data-dir`` overrides it. Read by the API and the workers."""

    database_url: str | None = None
    """SQLAlchemy async URL of the registry: ``sqlite+aiosqlite:///path`` or
    ``postgresql+asyncpg://user:password@host:5432/db``; unset, the SQLite file
    ``{data_dir}/hookline.db``. SQLite runs in WAL mode with ``synchronous=NORMAL``, like the
    embedded dev server: a power cut can lose the last moments of writes, never corrupt the
    file (use PostgreSQL in production). Read by the API and the workers."""

    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list, repr=False)
    """Admin bearer keys accepted by the API, comma-separated; ``hookline api`` refuses to
    start without one, and in production each must be at least 32 characters. List cursors
    are signed with a key derived from them, so every API process needs the same set. Read by
    the API."""

    mode: Literal["development", "production"] = "development"
    """``production`` refuses to start without ``secrets_keys`` (no silent plaintext), requires
    ``https://`` destinations and refuses loopback ones. Read by the API and the workers."""
    payload_keys: Annotated[list[str], NoDecode] = Field(default_factory=list, repr=False)
    """Keys that encrypt what Hookline stores in Temporal (event bodies, URLs, memos,
    summaries), ``<id>:<base64 of 32 bytes>``, comma-separated, current first; every worker
    and API process needs the same. Unset stores them in clear. ``hookline secrets-key``
    makes one. Read by the API and the workers."""
    codec_cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:8233", "http://127.0.0.1:8233"]
    )
    """Origins (the Temporal UI's) allowed to call the codec endpoints (``/codec/*``) from a
    browser, comma-separated. Read by the API."""
    allowed_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """CIDR networks webhooks may go to even when internal (comma-separated), e.g. a
    receiver on 10.20.0.0/16. Production otherwise refuses every non-public address and
    requires HTTPS; development allows loopback. Read by the API and the workers."""
    secrets_keys: Annotated[list[str], NoDecode] = Field(default_factory=list, repr=False)
    """Keys that encrypt signing secrets at rest, ``<id>:<base64 of 32 bytes>``, comma-separated,
    current first (older ones still decrypt). Make one with ``hookline secrets-key``. Unset, a
    process in development makes a key once and keeps it in ``{data_dir}/secrets-key``; one in
    production refuses to start. Read by the API and the workers."""

    api_host: str = "127.0.0.1"
    """Address the API listens on (``0.0.0.0`` in containers). Read by the API."""
    api_port: int = Field(default=8000, ge=0, le=65535)
    """Port the API listens on (``hookline dev --api-port`` overrides it). Read by the API."""

    log_format: Literal["json", "text"] | None = None
    """``json`` (one object per line: ``time``, ``level``, ``logger``, ``message``, and for each
    attempt ``delivery_id``, ``endpoint_id``, ``event_id``, ``attempt``, ``status_code``,
    ``duration_ms``, ``outcome``, with Temporal's workflow and activity ids; never secrets,
    bodies or URLs) or ``text``; unset, json in production and text in development. Read by the
    API and the workers."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """The lowest level logged. Read by the API and the workers."""

    temporal_address: str = "localhost:7233"
    """Temporal's frontend, ``host:port`` (``hookline dev`` ignores it and uses
    ``127.0.0.1:{--temporal-port}``). Read by the API and the workers."""
    temporal_namespace: str = "default"
    """The Temporal namespace deliveries run in. Read by the API and the workers."""
    temporal_tls: bool | None = None
    """TLS to Temporal (``true`` or ``false``), with the system's root certificates; unset, it
    is on when ``temporal_api_key`` is set. Read by the API and the workers."""
    temporal_api_key: str | None = Field(default=None, repr=False)
    """An API key for Temporal Cloud or a cluster that asks for one. Read by the API and the
    workers."""
    temporal_grpc_compression: Literal["auto", "gzip", "off"] = "auto"
    """Compression of the gRPC messages to and from Temporal: ``auto`` is gzip when
    ``temporal_api_key`` is set (Temporal Cloud, across the internet, where it saves
    bandwidth), else off. The SDK always compresses, with a fresh compressor for every message
    of a few kilobytes: next to the cluster that is CPU spent (a fifth of a worker's
    instructions) to save nothing. Read by the API and the workers."""
    task_queue: str = "hookline-deliveries"
    """The task queue deliveries, recoveries and the attempt-log purge run on. Read by the API
    and the workers."""

    max_payload_bytes: int = Field(default=256 * 1024, ge=1)
    """Largest accepted event payload, as compact JSON (413 above). Read by the API."""
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Largest accepted HTTP request body for any API call (413 above); never below
    ``max_payload_bytes`` + 64 KiB. Read by the API."""
    max_url_length: int = Field(default=2048, ge=16)
    """Longest endpoint or callback URL, in characters. Read by the API."""
    max_event_types_per_endpoint: int = Field(default=100, ge=1)
    """Most ``event_types`` patterns one endpoint may have. Read by the API."""
    max_headers_per_endpoint: int = Field(default=20, ge=0)
    """Most custom headers one endpoint may have. Read by the API."""

    retry: RetrySettings = Field(default_factory=RetrySettings)
    """The default retry schedule of deliveries; an endpoint's ``retry`` may override any
    field but ``failed_hold_s``. The API fixes a delivery's schedule when it accepts the
    event (the workers read it for operator events). Set the fields one by one, or all at
    once as a JSON object in ``HOOKLINE_RETRY``.

    - ``initial_interval_s``: the first wait between attempts (1 s to 1 day).
    - ``backoff_coefficient``: the factor each wait grows by (1-100).
    - ``max_interval_s``: the longest wait (at least the initial interval, up to 7 days).
    - ``window_s``: how long attempts go on; then the delivery fails (up to 30 days).
    - ``schedule_s``: an explicit schedule instead of the backoff, as a JSON list of 1-50
      delays of 0 to 7 days each, e.g. ``[0, 60, 300]``: the wait before the first attempt,
      then after each failed one; the delivery fails after the last. The other fields are
      then unused (see docs/retries.md).
    - ``failed_hold_s``: how long a failed delivery stays open awaiting a manual retry, which
      then continues it in the same run (0 to 90 days, default 7 days; 0 closes it at once).
      After it the run closes as failed, and a manual retry starts a new run."""
    attempt_timeout_s: float = Field(default=30.0, gt=0, le=300)
    """How long one POST may take, connect to last byte, before the attempt counts as failed.
    Read by the API, which fixes it with the schedule (and by the workers, for operator
    events)."""
    max_response_bytes: int = Field(default=64 * 1024, ge=1024)
    """How much of a receiver's response body an attempt reads before closing the connection
    (the attempt log keeps the first 1 KiB of it). Read by the workers."""
    attempt_log_retention_days: float = Field(default=30, gt=0)
    """How long the attempt log keeps an attempt; older ones are purged once a day. Read by
    the workers."""

    auto_disable_after_s: float = Field(default=5 * 86_400, gt=0)
    """An endpoint whose deliveries have all failed for this long is disabled at its next
    failed delivery (410 Gone disables it at once). Read by the workers."""
    operator_webhook_url: str | None = None
    """Where Hookline sends its own signed events (endpoint.disabled, delivery.failed,
    endpoint.recovered), through the same delivery machinery; unset sends none. Read by the
    workers."""
    operator_webhook_secret: str | None = Field(default=None, repr=False)
    """The ``whsec_`` secret those events are signed with (required with the URL: no process
    starts with the URL but no secret). Read by the workers."""

    worker_metrics_address: str | None = None
    """Where a worker serves Prometheus metrics at ``/metrics``, e.g. ``127.0.0.1:9464``;
    unset serves none. They are Temporal's SDK metrics (``temporal_activity_execution_latency``,
    slots, pollers, ...) and Hookline's: ``hookline_delivery_attempts_total`` by outcome, HTTP
    status class and event type; ``hookline_attempt_duration_seconds``;
    ``hookline_deliveries_total`` by outcome and event type; ``hookline_attempts_per_delivery``;
    ``hookline_attempts_in_flight``; ``hookline_endpoint_cache_lookups_total`` by outcome
    (``hit``, ``miss`` or ``stale``). The API's own ``/metrics`` adds
    ``hookline_api_request_duration_seconds``, ``hookline_events_accepted_total`` (the ingest
    rate), ``hookline_deliveries_started_total`` and ``hookline_deliveries_backing_off``
    (counted in Temporal, at most once per ``metrics_count_cache_s``). No label takes a value a
    client chooses without a bound: ``event_type`` keeps ``metrics_max_event_types`` values,
    the API's ``method`` the standard methods (others read ``other``). Read by the workers."""

    worker_max_concurrent_attempts: int = Field(default=200, ge=1)
    """How many POSTs one worker process has in flight at once. Read by the workers."""
    worker_max_cached_workflows: int = Field(default=1000, ge=0, le=100_000)
    """Workflows one worker process keeps in memory between their tasks (Temporal's sticky
    cache). A delivery not in it replays its history at its next task: with more deliveries
    waiting than this (a backlog behind an endpoint's lane), each grant costs a replay.
    Read by the workers."""
    worker_pollers: int = Field(default=40, ge=2, le=200)
    """Long polls one worker process keeps open for each kind of task: workflow tasks (four
    in five on the task queue, the rest on the worker's sticky queue) and activity tasks
    (retries, which come in floods when a receiver recovers). The SDK's default of five falls
    behind a burst of events: deliveries stall while the API starts them, then drain slowly
    from a task queue split into partitions (see docs/benchmarks.md). Temporal's frontend
    allows 1,200 polls per namespace at once by default (``frontend.namespaceCount``): keep
    workers times polls under it. Read by the workers."""
    event_loop: EventLoopName = "auto"
    """The event loop of ``hookline worker``, ``api`` and ``dev``: ``uvloop`` (libuv, installed
    with Hookline except on Windows) costs them about a tenth less CPU per delivery than
    ``asyncio``, the standard library's; ``auto`` takes uvloop where it is installed. The
    startup log line of each process names its loop. Read by the API and the workers."""
    worker_graceful_shutdown_s: float = Field(default=35.0, ge=0)
    """On shutdown (SIGTERM), how long in-flight attempts get to finish before they are handed
    back to Temporal. Read by the workers."""

    api_rate_limit_per_s: float | None = Field(default=100.0, gt=0)
    """Requests per second one API key may make, per API process (a token bucket; past it
    ``429 rate_limited`` with ``Retry-After``); ``none`` turns the limit off. Read by the
    API."""
    api_rate_limit_burst: int = Field(default=200, ge=1)
    """Requests a key may make at once before the rate applies. Read by the API."""
    api_auth_failures_per_s: float = Field(default=1.0, gt=0)
    """Failed authentications one client address (IPv4, or IPv6 /64) may make per second, per
    API process (a token bucket, taken before the key is looked up and given back when it is
    found). Past it, a request from that address whose key needs a registry lookup answers
    ``429 rate_limited`` with ``Retry-After``, without the lookup, until the bucket refills.
    Keys of ``api_keys`` need no lookup and are never limited; a key without the shape of a
    ``hookline keys create`` key (``hl_`` + 43 base64url characters) is a ``401`` with no
    lookup and nothing spent; a key this process verified before passes whatever the budget,
    so an attacker behind the same proxy cannot lock out keys in use. Read by the API."""
    api_auth_failure_burst: int = Field(default=20, ge=1)
    """Failed authentications a client address may make at once before that rate applies.
    Read by the API."""
    api_header_read_timeout_s: float = Field(default=10.0, gt=0, le=300)
    """How long a client may take to send a request's line and headers, from when the
    connection opens (or, kept alive, from the end of the previous response); past it the
    connection is closed. An idle kept-alive connection is closed after this time too: a
    proxy or load balancer that reuses connections to the API needs a shorter idle timeout
    (or raise this). It also bounds how long an answer may wait for a client that does not
    read it: past it the connection is aborted. Read by the API."""
    api_body_read_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    """How long a client may take to send a request's body, once the API reads it; past it
    the API answers ``408 request_timeout`` and closes the connection. Read by the API."""
    metrics_count_cache_s: float = Field(default=5.0, ge=0, le=300)
    """How long the API's ``/metrics`` reuses its count of deliveries backing off (a query
    to Temporal's visibility store) before counting again; scrapes during a count share it,
    and 0 counts at every scrape. Read by the API."""
    metrics_max_event_types: int = Field(default=50, ge=0, le=10_000)
    """Distinct ``event_type`` label values a worker process gives its metrics; event types
    seen after that many are counted under ``other`` (clients choose event types, so the
    label must be bounded). Read by the workers."""
    endpoint_max_concurrent_attempts: int = Field(default=10, ge=1)
    """POSTs to one endpoint in flight at once, across the workers, for an endpoint that sets
    no ``max_in_flight`` (and the default of one that does). Each worker takes an equal share
    of it, counting the workers polling the task queue every 15 s: with 2 workers and 10,
    each opens at most 5; with more workers than this, each opens 1 (for an exact limit
    whatever the workers, set ``max_in_flight``: the endpoint's lane holds it). More attempts
    wait their turn (one that waits past its timeout plus 10 s is retried). Read by the
    workers."""
    endpoint_breaker_failures: int = Field(default=5, ge=0, le=1000)
    """The circuit breaker, on for every endpoint: after this many failed attempts in a row
    to one endpoint (no answer, a timeout, a 5xx or a 429), only one probe attempt at a time
    is made to it, spaced out from 5 s up to 10 s while it fails; the other deliveries wait
    in the endpoint's lane without spending attempts. The first success closes the circuit
    and the backlog drains with a slow start. Each worker counts the attempts it made to an
    endpoint without a lane, so with several workers the circuit opens after at most this
    many per worker; a lane counts across workers. A 429 or 503 with ``Retry-After`` holds
    all of the endpoint's deliveries until then. 0 turns both off. Read by the workers and
    the API."""
    endpoint_lane_max_waiting: int = Field(default=5_000, ge=1, le=20_000)
    """Deliveries one endpoint's lane keeps waiting for a permit (and, for a ``fifo``
    endpoint, queued) at most. The lane carries them over continue-as-new, whose payload
    Temporal caps (2 MB by default). Beyond, a delivery is not kept: the lane tells it so,
    and it asks again every 5 minutes until there is room, and a ``fifo`` endpoint's order
    holds only among those kept. Read by the workers and the API."""
    fan_out_inline_max: int = Field(default=20, ge=0)
    """An event for at most this many endpoints has its deliveries started by the API before
    it answers. One for more is answered after a single start, of a fan-out workflow
    (``fan-out:{app}:{event}`` in the Temporal UI) that starts the deliveries within moments,
    in batches of 100, with each endpoint's retry settings as they are then (and the workers'
    defaults); until then they read as ``pending`` and a retry answers ``409 not_started``; an
    endpoint deleted or disabled before the fan-out reaches it gets no delivery (it reads
    ``404``). Read by the API."""
    endpoint_cache_ttl_s: float = Field(default=5.0, ge=0, le=300)
    """How long a worker uses an endpoint's configuration (URL, headers, secrets, state)
    before reading it again: changes made through the API reach attempts within this time.
    0 reads it for every attempt. With the registry unreachable, workers go on with the last
    configuration they read, however old. An API process keeps each app's list of endpoints
    (which endpoints an event goes to) as long, unless it made a change to them itself, and
    answers ``POST .../pause`` only after this long, when no worker with the same setting
    still attempts on a copy from before the pause. Read by the API and the workers."""

    list_page_size: int = Field(default=50, ge=1, le=1000)
    """Default page size (``limit``) of ``GET .../deliveries`` and ``GET .../events``
    (``?limit=`` may ask for up to 1000). Read by the API."""
    recovery_rate_per_s: float = Field(default=10.0, gt=0, le=1000)
    """How many failed deliveries a bulk recovery retries per second, at most; fixed when the
    recovery starts. Read by the API."""

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
