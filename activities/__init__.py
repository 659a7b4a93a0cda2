"""What happens on the wire: signing and posting one delivery attempt."""

from activities.delivery import AttemptInput, AttemptRecord, DeliveryActivities

__all__ = ["AttemptInput", "AttemptRecord", "DeliveryActivities"]
