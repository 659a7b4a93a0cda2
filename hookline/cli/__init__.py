"""The ``hookline`` command: ``dev``, ``worker``, ``api``, keys, and the people-facing
commands over the HTTP API. The top layer: it may import everything, and nothing imports it."""
