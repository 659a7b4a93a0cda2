"""The connection to Temporal: gRPC compression as the settings ask, both ways working."""

from __future__ import annotations

from typing import Literal

import pytest
from temporalio.service import GrpcCompression

from hookline.config.settings import Settings
from hookline.temporal.client import connect_temporal


@pytest.mark.parametrize(
    ("setting", "expected"), [("auto", GrpcCompression.NONE), ("gzip", GrpcCompression.GZIP)]
)
async def test_the_connection_compresses_as_the_settings_ask(
    temporal_address: str, setting: Literal["auto", "gzip", "off"], expected: GrpcCompression
) -> None:
    settings = Settings(temporal_address=temporal_address, temporal_grpc_compression=setting)

    client = await connect_temporal(settings)

    assert client.service_client.config.grpc_compression == expected
    # The dev server answers either way.
    assert (await client.count_workflows('WorkflowType = "NoSuchWorkflow"')).count == 0
