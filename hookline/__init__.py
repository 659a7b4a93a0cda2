"""Hookline: durable, signed webhook delivery on Temporal. The one import root.

Layers, bottom to top; a package imports only packages below it (import-linter holds it to
that, see ``pyproject.toml``):

- ``hookline.contracts``: what crosses a process boundary, and pure rules (ids, delivery
  inputs and results, statuses, search attributes, names, signing, header and destination
  rules). Imports nothing of Hookline's.
- ``hookline.config``: the settings object.
- ``hookline.storage``: the registry (apps, endpoints, events, attempt log, API keys) and
  secrets at rest.
- ``hookline.temporal``: connecting to Temporal, payload encryption, the embedded dev server.
- ``hookline.delivery``: the delivery core: accept an event and fan it out, start, read the
  status of and retry deliveries. Plain Python: no aiohttp, no HTTP types.
- ``hookline.activities`` (``activities/``), then ``hookline.workflows`` (``workflows/``),
  then ``hookline.worker``; beside them, independent of them, ``hookline.api`` (``api/``).
- ``hookline.cli``: the ``hookline`` command. Nothing imports it.
"""
