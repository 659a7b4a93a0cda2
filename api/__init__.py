"""Hookline's HTTP API (``hookline.api``): what backend services and people retrying
deliveries see. The application factory is ``hookline.api.app.create_app``, served by
``hookline.api.serving.api_runner``.

Handlers parse, call the delivery core (``hookline.delivery``) or the registry, and shape the
answer. May import everything below the Temporal layer; never workflows, activities, the worker
or the CLI. Submodules are imported where used.
"""
