"""The ``hookline`` command: ``dev`` (everything, locally), ``worker``, ``api``, ``keys``, and the
commands that use the API (``people``, ``listen``); ``build_parser`` is the whole command line."""

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
from pydantic import ValidationError
from temporalio.client import Client

from hookline.api.serving import api_runner
from hookline.cli import listen as listen_cli
from hookline.cli import people as people_cli
from hookline.cli.log_setup import configure_logging
from hookline.cli.parsing import add_command, add_group
from hookline.config.event_loop import EventLoopUnavailableError, loop_factory, loop_name
from hookline.config.settings import Settings
from hookline.storage.private_files import make_private, private_dir
from hookline.storage.registry import opened_registry
from hookline.storage.secret_box import SecretBoxError, generate_key, secret_box_for
from hookline.temporal.client import (
    TemporalUnreachableError,
    connect_temporal,
    metrics_runtime,
)
from hookline.temporal.dev_server import start_dev_server, stop_dev_server
from hookline.worker.running import running_worker

log = logging.getLogger("hookline")


DESCRIPTION = """\
Hookline: durable webhook delivery (an HTTP API over Temporal workflows).

Run it:
  dev          a Temporal dev server, a worker and the API in one process, locally
  worker       a delivery worker, on HOOKLINE_TEMPORAL_ADDRESS
  api          the HTTP API, on HOOKLINE_API_HOST:HOOKLINE_API_PORT
  listen       a local receiver for development: verifies and prints deliveries
Set it up:
  keys         create, list and revoke API keys
  secrets-key  print a new key for HOOKLINE_SECRETS_KEYS (secrets at rest)
Use it through the API (tables; --json prints the API's JSON as is):
  apps         create and show apps
  endpoints    create and list endpoints, show and rotate their secrets, recover
  events       send, list and show events
  deliveries   list, show and retry deliveries
  recoveries   show and cancel bulk recoveries

`hookline COMMAND --help` tells a command's subcommands and options."""

EPILOG = """\
exit codes:
  0    done
  1    an error: the API answered with one or could not be reached, a followed
       recovery ended without completing, or a server could not start
  2    usage: an unknown command or option, a missing or unusable argument (a
       payload that is not JSON, no API key)
  130  interrupted by Ctrl-C

The API commands call --api-url, else http://HOOKLINE_API_HOST:HOOKLINE_API_PORT,
with --api-key, else the first of HOOKLINE_API_KEYS, else the key `hookline dev`
keeps in HOOKLINE_DATA_DIR/api-key. Reference: docs/cli.md"""


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``hookline`` console script."""
    args = build_parser().parse_args(argv)
    if args.command == "secrets-key":
        print(generate_key())
        return

    try:
        settings = Settings()
    except ValidationError as err:
        sys.exit(f"hookline: invalid settings:\n{err}")
    configure_logging(settings)
    if args.command in people_cli.COMMANDS:
        sys.exit(people_cli.run(args, settings))
    if args.command == listen_cli.COMMAND:
        sys.exit(listen_cli.run(args, settings))
    if args.command == "dev":
        settings = settings.model_copy(
            update={
                "api_port": args.api_port or settings.api_port,
                "data_dir": args.data_dir or settings.data_dir,
                "temporal_address": f"127.0.0.1:{args.temporal_port}",
            }
        )
    elif args.command == "keys":
        try:
            asyncio.run(_keys(settings, args))
        except (SecretBoxError, KeyCommandError) as err:
            sys.exit(f"hookline: {err}")
        return
    elif args.command == "api" and not settings.api_keys:
        sys.exit("hookline: set HOOKLINE_API_KEYS (comma-separated) before serving the API")
    try:
        secret_box_for(settings)  # fail fast: production without a secrets key never starts
        new_loop = loop_factory(settings.event_loop)  # fails before any coroutine exists
        if args.command == "dev":
            run = _dev(settings, args.temporal_port, args.ui_port)
        else:
            run = _worker(settings) if args.command == "worker" else _api(settings)
        with (
            contextlib.suppress(KeyboardInterrupt),
            asyncio.Runner(loop_factory=new_loop) as runner,
        ):
            runner.run(_until_signalled(run))
    except (SecretBoxError, TemporalUnreachableError, EventLoopUnavailableError) as err:
        sys.exit(f"hookline: {err}")


def build_parser() -> argparse.ArgumentParser:
    """The ``hookline`` command line: every command, subcommand and option, each with help."""
    parser = argparse.ArgumentParser(
        prog="hookline",
        usage="hookline [-h] COMMAND ...",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # DESCRIPTION lists the commands, grouped: argparse's own list would repeat it, ungrouped.
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help=argparse.SUPPRESS
    )
    dev = add_command(
        commands, "dev", "run a Temporal dev server, a worker and the API, for local use"
    )
    dev.add_argument("--api-port", type=int, help="default: HOOKLINE_API_PORT or 8000")
    dev.add_argument(
        "--temporal-port", type=int, default=7233, help="the dev server's port; default: 7233"
    )
    dev.add_argument(
        "--ui-port", type=int, default=8233, help="the Temporal UI's port; default: 8233"
    )
    dev.add_argument("--data-dir", type=Path, help="default: HOOKLINE_DATA_DIR or ./.hookline")
    add_command(commands, "worker", "run a delivery worker against HOOKLINE_TEMPORAL_ADDRESS")
    add_command(commands, "api", "serve the HTTP API on HOOKLINE_API_HOST:HOOKLINE_API_PORT")
    add_command(
        commands, "secrets-key", "print a new key for HOOKLINE_SECRETS_KEYS (secrets at rest)"
    )
    keys = add_group(commands, "keys", "create, list and revoke API keys (kept in the registry)")
    create = add_command(keys, "create", "make a key; it is printed once, never stored")
    create.add_argument("--name", required=True, help="what the key is for")
    create.add_argument("--app", help="scope the key to this app (id or uid); default: admin")
    add_command(keys, "list", "list keys (never the keys themselves)")
    revoke = add_command(keys, "revoke", "revoke a key at once")
    revoke.add_argument("key_id", help="the key's id, as `hookline keys list` prints it")
    people_cli.add_commands(commands)
    listen_cli.add_commands(commands)
    return parser


async def _until_signalled(run: Coroutine[Any, Any, None]) -> None:
    """Run ``run`` until it ends or SIGINT/SIGTERM arrives, then let it clean up."""
    task = asyncio.ensure_future(run)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


class KeyCommandError(Exception):
    """A ``hookline keys`` command that cannot be done (unknown app or key)."""


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
