"""The names Temporal knows Hookline's workflows, signals, queries and memo keys by.

Running workflows are found and replayed by these exact strings: the workflow classes take
them in their decorators, and the delivery core starts, signals and queries by them (it sits
below the workflows and never imports them). Never change one.
"""

from __future__ import annotations

DELIVERY_WORKFLOW = "DeliveryWorkflow"
FAN_OUT_WORKFLOW = "FanOutWorkflow"
RECOVERY_WORKFLOW = "RecoveryWorkflow"
PURGE_ATTEMPT_LOG_WORKFLOW = "PurgeAttemptLogWorkflow"

RETRY_NOW_SIGNAL = "retry_now"
"""Delivery: attempt again now instead of waiting for the next backoff."""
RECOVERY_PROGRESS_QUERY = "progress"
"""Recovery: the request and the counters so far."""

PROGRESS_MEMO = "progress"
"""Memo of deliveries and recoveries: their progress (``DeliveryResult``, ``RecoveryProgress``)."""
URL_MEMO = "url"
"""Memo of deliveries: the URL they were started for (summaries and reads)."""
CREATED_MEMO = "created_at"
"""Memo of a delivery's later runs: when its first run started."""
