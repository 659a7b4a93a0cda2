"""The one way Hookline's processes connect to Temporal."""

from __future__ import annotations

import dataclasses

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import GrpcCompression

from hookline.config.settings import Settings
from hookline.temporal.payload_codec import EncryptionCodec

GRPC_COMPRESSION = {"off": GrpcCompression.NONE, "gzip": GrpcCompression.GZIP}


def metrics_runtime(bind_address: str) -> Runtime:
    """A Temporal runtime serving Prometheus metrics at ``http://{bind_address}/metrics``:
    the SDK's own and those Hookline records through ``activity/workflow.metric_meter()``."""
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=bind_address, counters_total_suffix=True, durations_as_seconds=True
            )
        )
    )


class TemporalUnreachableError(RuntimeError):
    """Temporal did not answer at the configured address."""


async def connect_temporal(settings: Settings, runtime: Runtime | None = None) -> Client:
    """A Temporal client for ``settings``' address and namespace, with the pydantic converter.

    Raises:
        TemporalUnreachableError: the connection failed.
    """
    converter = pydantic_data_converter
    if settings.payload_keys:
        converter = dataclasses.replace(
            converter, payload_codec=EncryptionCodec(settings.payload_keys)
        )
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            api_key=settings.temporal_api_key,
            tls=settings.temporal_tls,
            data_converter=converter,
            runtime=runtime,
            grpc_compression=GRPC_COMPRESSION[settings.resolved_grpc_compression],
        )
    except RuntimeError as err:
        raise TemporalUnreachableError(
            f"cannot connect to Temporal at {settings.temporal_address}: {err}"
        ) from None
