"""What the delivery core refuses, as types: the API answers each with its own status, and
callers such as bulk recovery tell them apart by type, not by message."""

from __future__ import annotations


class DeliveryError(Exception):
    """A delivery operation the core refuses.

    Attributes:
        code: A stable, machine-readable name (the API's error ``code``).
    """

    code = "delivery_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AlreadySucceeded(DeliveryError):
    """A manual retry of a delivery that has succeeded: there is nothing to do."""

    code = "already_succeeded"


class DeliveryNotFound(DeliveryError):
    """The delivery, or what the core needs of it (its history), is gone from Temporal."""

    code = "not_found"


class LaneUnavailable(DeliveryError):
    """An endpoint's lane is running but did not answer (its worker is down or its workflow
    task fails): its health is unknown for now."""

    code = "lane_unavailable"


class RecoveryFinished(DeliveryError):
    """A cancel of a bulk recovery that has already finished."""

    code = "already_finished"
