"""Hookline's HTTP API: what backend services and people retrying deliveries see.

The application factory is ``api.app.create_app``; submodules are imported where used.
"""
