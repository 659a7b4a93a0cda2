"""Renders the configuration reference, docs/configuration.md, from the settings object.

Run from the repository root: ``python -m hookline.config.reference > docs/configuration.md``.
Each field of ``Settings`` becomes one section: its environment variable, its default, the
values it allows (from the field's constraints) and its description (the field's docstring).
A field holding a model (``retry``) becomes one section per field of that model, named with
``env_nested_delimiter``. Their descriptions are the list items of the holding field's
docstring that name them (a line ``- <the name in double backticks>: text``), else the nested
field's own description. A field without a description is an error, not a blank.
"""

from __future__ import annotations

import inspect
import re
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from hookline.config.settings import Settings

REGENERATE = "python -m hookline.config.reference > docs/configuration.md"
"""The command that writes the page; the page and its staleness test name it."""

HEADER = f"""\
<!-- Generated from hookline/config/settings.py: edit the docstrings there, then run
     {REGENERATE}
     (tests/test_docs.py fails while this file is stale). -->

# Configuration

Every Hookline process reads its settings once, at start, from `HOOKLINE_*` environment
variables (the `Settings` object in `hookline/config/settings.py`); invalid settings stop every
process at start.

- Nested retry fields use a double underscore, e.g. `HOOKLINE_RETRY__WINDOW_S=86400`;
  `HOOKLINE_RETRY__SCHEDULE_S` is a JSON list, e.g. `'[0, 60, 300]'`.
- Lists (keys, networks, origins) are comma-separated.
- `none` means unset, for settings that may be unset: e.g.
  `HOOKLINE_API_RATE_LIMIT_PER_S=none` turns the rate limit off.
- Each description ends with the processes that read the setting: the API fixes a
  delivery's retry schedule and attempt timeout when it accepts the event, the workers make
  the attempts.
- `hookline dev` reads these too, except that `--api-port` and `--data-dir` override
  `HOOKLINE_API_PORT` and `HOOKLINE_DATA_DIR`, and it always connects to its own dev server
  on `127.0.0.1:{{--temporal-port}}`.
"""

_ITEM = re.compile(r"^- `(\w+)`: (.*)$")
_DOCS_PAGE = re.compile(r"\bdocs/([\w-]+\.md)\b")
_BYTE_UNITS = ((1024 * 1024, "MiB"), (1024, "KiB"))
_TIME_UNITS = ((86_400, "day"), (3_600, "hour"), (60, "minute"))


@dataclass(frozen=True)
class SettingDoc:
    """One environment variable of the reference page."""

    setting: str
    """The field's dotted name, e.g. ``retry.window_s``."""
    variable: str
    """The environment variable, e.g. ``HOOKLINE_RETRY__WINDOW_S``."""
    default: str
    """The default, as it would be written in the environment (or ``unset``)."""
    allowed: str
    """The values the field's type and constraints allow, or empty."""
    description: str
    """Markdown."""


def setting_docs(settings: type[BaseSettings] = Settings) -> list[SettingDoc]:
    """The reference entries of every field of ``settings``, in declaration order.

    Args:
        settings: The settings class to document.

    Returns:
        One entry per field, and one per field of a nested model.

    Raises:
        ValueError: a field, or a field of a nested model, has no description.
    """
    prefix = str(settings.model_config.get("env_prefix", ""))
    delimiter = str(settings.model_config.get("env_nested_delimiter") or "__")
    docs: list[SettingDoc] = []
    for name, field in settings.model_fields.items():
        description = _markdown(_required_description(name, field))
        nested = field.annotation
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            intro, items = _split_items(description)
            default = field.get_default(call_default_factory=True, validated_data={})
            docs.append(SettingDoc(name, (prefix + name).upper(), "", "", intro))
            for sub_name, sub_field in nested.model_fields.items():
                dotted = f"{name}.{sub_name}"
                sub_description = items.get(sub_name) or _markdown(
                    _required_description(dotted, sub_field)
                )
                docs.append(
                    SettingDoc(
                        setting=dotted,
                        variable=(prefix + name + delimiter + sub_name).upper(),
                        default=_default(sub_name, getattr(default, sub_name)),
                        allowed=_allowed(sub_field),
                        description=sub_description,
                    )
                )
            continue
        docs.append(
            SettingDoc(
                setting=name,
                variable=(prefix + name).upper(),
                default=_default(
                    name, field.get_default(call_default_factory=True, validated_data={})
                ),
                allowed=_allowed(field),
                description=description,
            )
        )
    return docs


def render(settings: type[BaseSettings] = Settings) -> str:
    """The whole reference page, in Markdown.

    Args:
        settings: The settings class to document.

    Returns:
        The text of docs/configuration.md.

    Raises:
        ValueError: a field has no description.
    """
    docs = setting_docs(settings)
    lines = [HEADER, "## Summary", "", "| Variable | Default |", "|---|---|"]
    for doc in docs:
        if doc.default:
            lines.append(f"| [`{doc.variable}`](#{doc.variable.lower()}) | {doc.default} |")
    lines += ["", "## Settings"]
    for doc in docs:
        lines += ["", f"### `{doc.variable}`", ""]
        facts = [f"Setting `{doc.setting}`"]
        if doc.default:
            facts.append(f"default {doc.default}")
        if doc.allowed:
            facts.append(doc.allowed)
        lines += [" · ".join(facts) + ".", "", doc.description]
    return "\n".join(lines) + "\n"


def _required_description(name: str, field: FieldInfo) -> str:
    if not field.description:
        raise ValueError(f"setting {name} has no description: give it a docstring")
    return field.description


def _markdown(docstring: str) -> str:
    """A docstring as Markdown: single backticks, paragraphs and list items on one line each,
    and ``docs/page.md`` as a link to that page."""
    text = _DOCS_PAGE.sub(r"[\1](\1)", inspect.cleandoc(docstring).replace("``", "`"))
    blocks: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            blocks.append("")
        elif stripped.startswith("- ") or not blocks or not blocks[-1]:
            blocks.append(stripped)
        else:
            blocks[-1] += " " + stripped
    return re.sub(r"\n{3,}", "\n\n", "\n".join(blocks)).strip()


def _split_items(description: str) -> tuple[str, dict[str, str]]:
    """A description's text without its ``- `name`: text`` items, and those items by name."""
    kept: list[str] = []
    items: dict[str, str] = {}
    for line in description.splitlines():
        item = _ITEM.match(line)
        if item:
            items[item[1]] = item[2][:1].upper() + item[2][1:]
        else:
            kept.append(line)
    return "\n".join(kept).strip(), items


def _default(name: str, value: object) -> str:
    if value is None or value == []:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return "`" + ",".join(str(item) for item in value) + "`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    shown = f"`{value}`"
    if isinstance(value, int) and not isinstance(value, bool):
        hint = _size_hint(name, value)
        if hint:
            shown += f" ({hint})"
    return shown


def _size_hint(name: str, value: int) -> str:
    """``256 KiB`` for a byte count, ``3 days`` for a number of seconds, when it helps."""
    if name.endswith("_bytes"):
        for size, unit in _BYTE_UNITS:
            if value >= size and value % size == 0:
                return f"{value // size} {unit}"
    elif name.endswith("_s") and not name.endswith("_per_s"):
        for size, unit in _TIME_UNITS:
            if value >= size and value % size == 0:
                count = value // size
                return f"{count} {unit}{'s' if count > 1 else ''}"
    return ""


def _allowed(field: FieldInfo) -> str:
    """The values a field allows, from its ``Literal`` type or its numeric bounds."""
    literals = list(_literals(field.annotation))
    if literals:
        return "one of " + ", ".join(f"`{value}`" for value in literals)
    # pydantic keeps Field(ge=..., le=...) as annotated_types' Ge, Le, ... in the metadata.
    bounds = {
        name: _number(getattr(bound, name))
        for bound in field.metadata
        for name in ("ge", "gt", "le", "lt")
        if getattr(bound, name, None) is not None
    }
    ge, gt, le, lt = (bounds.get(name, "") for name in ("ge", "gt", "le", "lt"))
    if ge and le:
        return f"{ge} to {le}"
    low = f"at least {ge}" if ge else f"over {gt}" if gt else ""
    high = f"at most {le}" if le else f"under {lt}" if lt else ""
    return ", ".join(part for part in (low, high) if part)


def _literals(annotation: object) -> Iterator[object]:
    if get_origin(annotation) is Literal:
        yield from get_args(annotation)
    elif get_origin(annotation) in (Union, types.UnionType):
        for member in get_args(annotation):
            yield from _literals(member)


def _number(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}" if isinstance(value, int) else str(value)


def main() -> None:
    """Print the page (redirect it to docs/configuration.md)."""
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
