"""The one way Hookline's processes connect to Temporal."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from hookline.settings import Settings


class TemporalUnreachableError(RuntimeError):
    """Temporal did not answer at the configured address."""


async def connect_temporal(settings: Settings) -> Client:
    """A Temporal client for ``settings``' address and namespace, with the pydantic converter.

    Raises:
        TemporalUnreachableError: the connection failed.
    """
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            api_key=settings.temporal_api_key,
            tls=settings.temporal_tls,
            data_converter=pydantic_data_converter,
        )
    except RuntimeError as err:
        raise TemporalUnreachableError(
            f"cannot connect to Temporal at {settings.temporal_address}: {err}"
        ) from None
