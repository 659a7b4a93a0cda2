"""The Hookline worker: runs delivery workflows and their POST attempts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import aiohttp
from temporalio.client import Client
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker

from hookline.activities.delivery import USER_AGENT, DeliveryActivities
from hookline.activities.endpoint_breaker import EndpointBreaker
from hookline.activities.endpoint_cache import EndpointCache
from hookline.activities.endpoint_health import EndpointHealthActivities
from hookline.activities.endpoint_slots import EndpointSlots
from hookline.activities.fan_out import FanOutActivities
from hookline.activities.guarded_connector import GuardedConnector
from hookline.activities.lanes import LaneActivities
from hookline.activities.maintenance import MaintenanceActivities
from hookline.activities.recovery import RecoveryActivities
from hookline.config.event_loop import loop_name
from hookline.config.settings import TASK_QUEUE_POLL_SHARE, Settings
from hookline.contracts.destination_policy import DestinationPolicy
from hookline.contracts.metric_labels import EVENT_TYPES
from hookline.storage.registry import opened_registry
from hookline.worker.schedules import ensure_schedules
from hookline.worker.worker_count import COUNT_EVERY, keep_counting_workers
from hookline.workflows.attempt_log_purge import PurgeAttemptLogWorkflow
from hookline.workflows.delivery import DeliveryWorkflow
from hookline.workflows.fan_out import FanOutWorkflow
from hookline.workflows.lane import LaneWorkflow
from hookline.workflows.recovery import RecoveryWorkflow

log = logging.getLogger(__name__)
WORKFLOW_TASKS_BESIDE_ATTEMPTS = 100
"""Workflow-task slots beyond those first attempts (local activities) can hold."""


@asynccontextmanager
async def running_worker(
    settings: Settings,
    client: Client,
    *,
    slots: EndpointSlots | None = None,
    count_workers_every: timedelta = COUNT_EVERY,
) -> AsyncIterator[Worker]:
    """Run a worker on ``settings.task_queue`` for the duration of the ``async with`` block.

    Leaving the block shuts the worker down gracefully: in-flight attempts get
    ``worker_graceful_shutdown_s`` to finish, then are handed back to Temporal.

    Args:
        slots: The worker's slots per endpoint (tests pass theirs, to watch its share).
        count_workers_every: How often it counts the workers on its task queue, to take its
            share of ``endpoint_max_concurrent_attempts``.
    """
    slots = slots or EndpointSlots(settings.endpoint_max_concurrent_attempts)
    # Unique per worker, also for two in one process: the workers are counted by it.
    identity = f"{client.identity}/{secrets.token_hex(4)}"
    EVENT_TYPES.set_limit(settings.metrics_max_event_types)
    policy = DestinationPolicy(settings.mode, settings.allowed_networks)
    connector = GuardedConnector(policy, limit=settings.worker_max_concurrent_attempts)
    async with (
        opened_registry(settings) as registry,
        aiohttp.ClientSession(connector=connector, headers={"user-agent": USER_AGENT}) as session,
    ):
        endpoints = EndpointCache(registry, settings.endpoint_cache_ttl_s)
        activities = DeliveryActivities(
            session,
            registry,
            settings.max_response_bytes,
            settings.operator_webhook_secret,
            require_https=policy.requires_https,
            endpoints=endpoints,
            slots=slots,
            breaker=EndpointBreaker(client, settings, registry, endpoints),
        )
        health = EndpointHealthActivities(registry, client, settings, endpoints)
        maintenance = MaintenanceActivities(
            registry, timedelta(days=settings.attempt_log_retention_days)
        )
        recovery = RecoveryActivities(client, settings)
        lanes = LaneActivities(client, settings, registry, endpoints)
        fan_out = FanOutActivities(client, settings, registry)
        await ensure_schedules(client, settings)
        worker = Worker(
            client,
            task_queue=settings.task_queue,
            identity=identity,
            workflows=[
                DeliveryWorkflow,
                FanOutWorkflow,
                LaneWorkflow,
                PurgeAttemptLogWorkflow,
                RecoveryWorkflow,
            ],
            activities=[
                activities.post_signed,
                health.record_outcome,
                fan_out.start_deliveries,
                maintenance.purge_attempt_log,
                maintenance.drop_expired_secrets,
                recovery.find_failed_deliveries,
                recovery.retry_deliveries,
                lanes.ask_lane,
                lanes.look_at_queue_heads,
                lanes.reset_endpoint_breaker,
            ],
            max_cached_workflows=settings.worker_max_cached_workflows,
            max_concurrent_activities=settings.worker_max_concurrent_attempts,
            # A run's first attempt is a local activity (see DeliveryWorkflow), which holds its
            # workflow task: keep room for the workflow tasks of signals, timers and results.
            max_concurrent_local_activities=settings.worker_max_concurrent_attempts,
            max_concurrent_workflow_tasks=settings.worker_max_concurrent_attempts
            + WORKFLOW_TASKS_BESIDE_ATTEMPTS,
            graceful_shutdown_timeout=timedelta(seconds=settings.worker_graceful_shutdown_s),
            # A fixed number, not autoscaled: under the SDK's autoscaler some workflow tasks
            # waited out their 10 s timeout after the server had handed them to a poll
            # (cause not pinned down). docs/benchmarks.md has the figures.
            workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(settings.worker_pollers),
            nonsticky_to_sticky_poll_ratio=TASK_QUEUE_POLL_SHARE,
            activity_task_poller_behavior=PollerBehaviorSimpleMaximum(settings.worker_pollers),
        )
        counting = asyncio.ensure_future(
            keep_counting_workers(client, settings.task_queue, identity, slots, count_workers_every)
        )
        try:
            async with worker:
                log.info(
                    "worker started on task queue %s (event loop: %s)",
                    settings.task_queue,
                    loop_name(asyncio.get_running_loop()),
                )
                yield worker
        finally:
            counting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await counting
            log.info("worker stopped on task queue %s", settings.task_queue)
