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
LANE_WORKFLOW = "LaneWorkflow"

RETRY_NOW_SIGNAL = "retry_now"
"""Delivery: attempt again now instead of waiting for the next backoff."""
RECOVERY_PROGRESS_QUERY = "progress"
"""Recovery: the request and the counters so far."""
LANE_ASK_SIGNAL = "lane_ask"
"""Lane: a delivery wants a permit for its next attempt."""
LANE_ENQUEUE_SIGNAL = "lane_enqueue"
"""Lane (``fifo``): deliveries just accepted, queued in acceptance order before they ask."""
LANE_TRIPPED_SIGNAL = "lane_tripped"
"""Lane: a worker tripped the endpoint's circuit breaker (open it, or hold for Retry-After)."""
LANE_ATTEMPTED_SIGNAL = "lane_attempted"
"""Lane: an attempt under a permit ended, and how."""
LANE_ENDED_SIGNAL = "lane_ended"
"""Lane: a delivery ended (succeeded, failed or cancelled)."""
LANE_CONFIGURE_SIGNAL = "lane_configure"
"""Lane: the endpoint's lane settings changed (paused, resumed, limits)."""
LANE_GRANTED_SIGNAL = "lane_granted"
"""Delivery: the lane granted a permit for one attempt."""
LANE_PAUSED_SIGNAL = "lane_paused"
"""Delivery: the lane it waits in is paused (its status reads ``paused`` until a grant)."""
LANE_FULL_SIGNAL = "lane_full"
"""Delivery: its lane was full and did not keep its ask (it asks again sooner)."""
LANE_HEALTH_QUERY = "lane_health"
"""Lane: its state, in flight, waiting, failures (the endpoint's health read)."""

PROGRESS_MEMO = "progress"
"""Memo of deliveries and recoveries: their progress (``DeliveryResult``, ``RecoveryProgress``)."""
URL_MEMO = "url"
"""Memo of deliveries: the URL they were started for (summaries and reads)."""
CREATED_MEMO = "created_at"
"""Memo of a delivery's later runs: when its first run started."""
