"""The registry's SQL schema: apps, endpoints, and which deliveries each accepted event made."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite forgets the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)


metadata = MetaData()

apps = Table(
    "apps",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("uid", String(64), unique=True, nullable=True),
    Column("name", String(256), nullable=False),
    # The app's own signing secret, for per-job callback URLs (sealed like endpoints').
    Column("secret", Text, nullable=True),
    Column("previous_secret", Text, nullable=True),
    Column("previous_secret_expires_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
)

endpoints = Table(
    "endpoints",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("app_id", String(64), ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    Column("url", Text, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("event_types", JSON, nullable=True),
    Column("secret", Text, nullable=False),
    Column("previous_secret", Text, nullable=True),
    Column("previous_secret_expires_at", UTCDateTime(), nullable=True),
    Column("signature_scheme", String(32), nullable=False, default="standard"),
    Column("signature_header", String(256), nullable=True),
    Column("headers", JSON, nullable=False),
    Column("retry", JSON, nullable=True),
    Column("timeout_s", Float, nullable=True),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("disabled_reason", Text, nullable=True),
    Column("failing_since", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    # The endpoint's lane (issue #15): any of these set puts its deliveries through it.
    Column("rate_limit_per_s", Float, nullable=True),
    Column("max_in_flight", Integer, nullable=True),
    # Server defaults only: an insert that does not name them works on the schema before.
    Column("ordering", String(8), nullable=False, server_default="none"),
    Column("paused", Boolean, nullable=False, server_default=false()),
    # Set when a worker saw the endpoint fail too often (or say Retry-After): its deliveries
    # then go through its lane, whose circuit breaker clears it once the endpoint recovered.
    Column("breaker_tripped_at", UTCDateTime(), nullable=True),
    Index("ix_endpoints_app_id", "app_id"),
)

# An event row is written once its deliveries have been started: it is the idempotency record
# that makes a resubmitted event id answer with the same deliveries. Delivery *state* is
# Temporal's; these rows only say which deliveries an event made.
events = Table(
    "events",
    metadata,
    Column("app_id", String(64), ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True),
    Column("id", String(128), primary_key=True),
    Column("type", String(256), nullable=False),
    Column("body", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_events_app_created", "app_id", "created_at"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("app_id", String(64), nullable=False),
    Column("event_id", String(128), nullable=False),
    Column("endpoint_id", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_deliveries_event", "app_id", "event_id"),
    Index("ix_deliveries_endpoint_created", "endpoint_id", "created_at"),
)

# Every attempt of every delivery, written by the worker: Temporal's history keeps only the
# last attempt of an activity's retries. Rows older than the retention are purged daily.
attempts = Table(
    "attempts",
    metadata,
    # BIGINT on PostgreSQL; SQLite's INTEGER rowid is 64-bit already and must stay INTEGER.
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("app_id", String(64), nullable=False),
    Column("delivery_id", String(64), nullable=False),
    Column("endpoint_id", String(64), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("duration_ms", Integer, nullable=False),
    Column("error", Text, nullable=True),
    Column("response_body", Text, nullable=True),
    Column("url", Text, nullable=True),
    Index("ix_attempts_delivery", "app_id", "delivery_id", "attempt"),
    Index("ix_attempts_at", "at"),
)

# API keys made with `hookline keys create`: only a SHA-256 of each key is kept (keys are
# 256-bit random strings, so a plain hash is enough); a key scoped to an app sees only it.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("app_id", String(64), ForeignKey("apps.id", ondelete="CASCADE"), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
)
