"""The Temporal worker process: registers the workflows and activities on the task queue, and
the schedules they run on. May import everything below the entry points (not ``hookline.api``,
nor ``hookline.cli``)."""

from __future__ import annotations

from hookline.worker.running import running_worker

__all__ = ["running_worker"]
