"""The one way Hookline's processes connect to Temporal."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from hookline.settings import Settings


async def connect_temporal(settings: Settings) -> Client:
    """A Temporal client for ``settings``' address and namespace, with the pydantic converter."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )
