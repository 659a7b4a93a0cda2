"""How ``hookline``'s commands declare themselves to argparse, and the exit codes they share."""

from __future__ import annotations

import argparse
from typing import TypeAlias

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""A command's list of subcommands, as ``add_subparsers`` returns it."""

EXIT_OK = 0
EXIT_ERROR = 1
"""The API answered an error or could not be reached, or the work did not get done."""
EXIT_USAGE = 2
"""The command line cannot be used as given (argparse's own code for usage errors)."""
EXIT_INTERRUPTED = 130
"""What a shell reports for a command stopped by Ctrl-C (128 + SIGINT)."""


class UsageError(Exception):
    """An argument argparse accepted but the command cannot use (a payload that is not JSON,
    no API key): printed as ``hookline: {message}``, exit code 2."""


def add_command(
    commands: Subcommands,
    name: str,
    summary: str,
    *parents: argparse.ArgumentParser,
) -> argparse.ArgumentParser:
    """Add a command whose one-line ``summary`` is both its line in ``commands``' list and the
    description of its own ``--help``.

    Args:
        commands: The subcommands to add it to.
        name: The command's name.
        summary: What it does, lower case and without a full stop.
        parents: Parsers whose options it shares.

    Returns:
        The command's parser, for its arguments.
    """
    return commands.add_parser(
        name, help=summary, description=summary[:1].upper() + summary[1:] + ".", parents=parents
    )


def add_group(commands: Subcommands, name: str, summary: str) -> Subcommands:
    """Add a command made of subcommands (``hookline NAME SUBCOMMAND``), which it requires.

    Returns:
        Its subcommands, to add them; the one chosen is ``args.{name}_command``.
    """
    return add_command(commands, name, summary).add_subparsers(
        dest=f"{name}_command", required=True, metavar="SUBCOMMAND", title="subcommands"
    )
