"""Delivery orchestration: the workflow, its input and its retry schedule."""

from workflows.delivery import DeliveryInput, DeliveryResult, DeliveryWorkflow, RetryRequest
from workflows.retry_settings import RetrySettings

__all__ = ["DeliveryInput", "DeliveryResult", "DeliveryWorkflow", "RetryRequest", "RetrySettings"]
