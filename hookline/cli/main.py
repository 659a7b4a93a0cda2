"""The ``hookline`` command: ``dev`` (everything, locally), ``worker``, ``api``, ``keys``, and the
commands that use the API (``people``, ``listen``); ``build_parser`` is the whole command line,
and ``main`` hands each command to its module (``servers`` only for the server commands)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from hookline.cli import listen as listen_cli
from hookline.cli import people as people_cli
from hookline.cli.log_setup import configure_logging
from hookline.cli.parsing import add_command, add_group
from hookline.config.settings import Settings
from hookline.storage.secret_box import generate_key

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
  0    done; dev, worker, api and listen also exit 0 when Ctrl-C or SIGTERM stops
       them, which is how they are meant to stop
  1    an error: the API answered with one or could not be reached, a followed
       recovery ended without completing, or a server could not start
  2    usage: an unknown command or option, a missing or unusable argument (a
       payload that is not JSON, no API key)
  130  a one-shot command (apps, endpoints, events, deliveries, recoveries, keys)
       interrupted by Ctrl-C

The API commands and listen call --api-url, else
http://HOOKLINE_API_HOST:HOOKLINE_API_PORT, with --api-key, else the first of
HOOKLINE_API_KEYS, else the key `hookline dev` keeps in HOOKLINE_DATA_DIR/api-key.
Reference: docs/cli.md"""


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``hookline`` console script."""
    args = build_parser().parse_args(argv)
    if args.command == "secrets-key":
        print(generate_key())
        return
    run = _runner(args.command)
    try:
        settings = Settings()
    except ValidationError as err:
        sys.exit(f"hookline: invalid settings:\n{err}")
    configure_logging(settings)
    sys.exit(run(args, settings))


def _runner(command: str) -> Callable[[argparse.Namespace, Settings], int]:
    """The function that runs ``command`` and returns the exit code."""
    if command in people_cli.COMMANDS:
        return people_cli.run
    if command == listen_cli.COMMAND:
        return listen_cli.run
    # Imported only here: the server side takes most of a second to import, which every client
    # command would pay at start-up. Before configure_logging: alembic logs noise at import.
    from hookline.cli import servers

    return servers.run


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
