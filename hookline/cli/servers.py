"""``hookline dev|worker|api|keys``: the commands that run Hookline's servers or work on its
registry. They import the server side (the API, the worker, Temporal, the registry and its
migrations), which takes most of a second: ``main`` imports this module only for them."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web
from temporalio.client import Client

from hookline.api.serving import api_runner
from hookline.cli.parsing import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK
from hookline.config.event_loop import EventLoopUnavailableError, loop_factory, loop_name
from hookline.config.settings import Settings
from hookline.storage.private_files import make_private, private_dir
from hookline.storage.registry import opened_registry
from hookline.storage.secret_box import SecretBoxError, secret_box_for
from hookline.temporal.client import (
    TemporalUnreachableError,
    connect_temporal,
    metrics_runtime,
)
from hookline.temporal.dev_server import start_dev_server, stop_dev_server
from hookline.worker.running import running_worker

log = logging.getLogger("hookline")


class KeyCommandError(Exception):
    """A ``hookline keys`` command that cannot be done (unknown app or key)."""


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``dev``, ``worker``, ``api`` or ``keys``; the servers until SIGINT or SIGTERM.

    Returns:
        The process's exit code: 0 done, or a server stopped by SIGINT (Ctrl-C) or SIGTERM,
        which is how they are meant to stop; 1 a server that cannot start, or a ``keys``
        command that cannot be done; 130 a ``keys`` command interrupted by Ctrl-C.
    """
    if args.command == "keys":
        try:
            asyncio.run(_keys(settings, args))
        except (SecretBoxError, KeyCommandError) as err:
            return _failed(str(err))
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        return EXIT_OK
    try:
        if args.command == "api" and not settings.api_keys:
            return _failed("set HOOKLINE_API_KEYS (comma-separated) before serving the API")
        if args.command == "dev":
            settings = settings.model_copy(
                update={
                    "api_port": args.api_port or settings.api_port,
                    "data_dir": args.data_dir or settings.data_dir,
                    "temporal_address": f"127.0.0.1:{args.temporal_port}",
                }
            )
        secret_box_for(settings)  # fail fast: production without a secrets key never starts
        new_loop = loop_factory(settings.event_loop)  # fails before any coroutine exists
        if args.command == "dev":
            serve = _dev(settings, args.temporal_port, args.ui_port)
        else:
            serve = _worker(settings) if args.command == "worker" else _api(settings)
        with (
            contextlib.suppress(KeyboardInterrupt),
            asyncio.Runner(loop_factory=new_loop) as runner,
        ):
            runner.run(_until_signalled(serve))
    except (SecretBoxError, TemporalUnreachableError, EventLoopUnavailableError) as err:
        return _failed(str(err))
    return EXIT_OK


def _failed(message: str) -> int:
    print(f"hookline: {message}", file=sys.stderr)
    return EXIT_ERROR


async def _until_signalled(run: Coroutine[Any, Any, None]) -> None:
    """Run ``run`` until it ends or SIGINT/SIGTERM arrives, then let it clean up."""
    task = asyncio.ensure_future(run)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _keys(settings: Settings, args: argparse.Namespace) -> None:
    async with opened_registry(settings) as registry:
        if args.keys_command == "create":
            app_id = None
            if args.app:
                app = await registry.apps.get(args.app)
                if app is None:
                    raise KeyCommandError(f"no app {args.app!r}")
                app_id = app.id
            record, key = await registry.keys.create(args.name, app_id)
            print(f"{record.id}\t{key}")
            print("Keep the key now: it is not stored and cannot be shown again.", file=sys.stderr)
        elif args.keys_command == "list":
            for k in await registry.keys.list():
                state = f"revoked {k.revoked_at.isoformat()}" if k.revoked_at else "live"
                scope = f"app {k.app_id}" if k.app_id else "admin"
                print(f"{k.id}\t{k.prefix}...\t{k.name}\t{scope}\t{state}")
        elif not await registry.keys.revoke(args.key_id):
            raise KeyCommandError(f"no live key {args.key_id!r}")


async def _worker(settings: Settings) -> None:
    runtime = None
    if settings.worker_metrics_address:
        runtime = metrics_runtime(settings.worker_metrics_address)
    client = await connect_temporal(settings, runtime)
    async with running_worker(settings, client):
        await asyncio.Event().wait()


async def _api(settings: Settings, client: Client | None = None) -> None:
    runner = api_runner(settings, client)
    try:
        # Inside the try: if startup fails (Temporal unreachable), cleanup still closes what
        # started before it, such as the registry, instead of leaving it to loop shutdown.
        await runner.setup()
        await web.TCPSite(runner, settings.api_host, settings.api_port).start()
        log.info(
            "api listening on http://%s:%d (event loop: %s)",
            settings.api_host,
            settings.api_port,
            loop_name(asyncio.get_running_loop()),
        )
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


async def _dev(settings: Settings, temporal_port: int, ui_port: int) -> None:
    private_dir(settings.data_dir)
    if not settings.api_keys:
        settings = settings.model_copy(update={"api_keys": [_dev_api_key(settings.data_dir)]})
    codec = f"http://127.0.0.1:{settings.api_port}/codec" if settings.payload_keys else None
    server = await start_dev_server(
        temporal_port, ui_port, settings.data_dir / "temporal.db", ui_codec_endpoint=codec
    )
    try:
        # The dev server makes its file as it likes (a file made for it would read as set up).
        make_private(settings.data_dir / "temporal.db")
        runtime = None
        if settings.worker_metrics_address:
            runtime = metrics_runtime(settings.worker_metrics_address)
        client = await connect_temporal(settings, runtime)
        async with running_worker(settings, client):
            api = asyncio.ensure_future(_api(settings, client))
            print(
                "\nHookline is running.\n"
                f"  API:         http://{settings.api_host}:{settings.api_port}\n"
                f"  API key:     {settings.api_keys[0]}\n"
                f"  Temporal UI: http://127.0.0.1:{ui_port}\n"
                f"  Data:        {settings.data_dir.resolve()}\n"
                "Press Ctrl-C to stop.\n",
                flush=True,
            )
            try:
                # Shielded: a signal cancels this task, and the API is then cancelled once,
                # below; a second cancel would cut its clean-up (the registry's close) short.
                await asyncio.shield(api)
            finally:
                api.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await api
    finally:
        stop_dev_server(server)


def _dev_api_key(data_dir: Path) -> str:
    """The local API key, made once and kept in the data directory (readable by the owner)."""
    path = data_dir / "api-key"
    if not path.exists():
        path.write_text(f"hl_dev_{secrets.token_urlsafe(24)}\n")
        path.chmod(0o600)
    return path.read_text().strip()
