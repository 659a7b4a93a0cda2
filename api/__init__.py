"""Hookline's HTTP API: what backend services and people retrying deliveries see."""

from api.app import create_app

__all__ = ["create_app"]
