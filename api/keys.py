"""Every ``web.AppKey`` of the API application, in one place."""

from __future__ import annotations

from aiohttp import web
from temporalio.client import Client

from api.endpoint_lists import EndpointLists
from hookline.destination_policy import DestinationPolicy
from hookline.registry import Registry
from hookline.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
DESTINATIONS = web.AppKey("destinations", DestinationPolicy)
REGISTRY = web.AppKey("registry", Registry)
TEMPORAL = web.AppKey("temporal", Client)
ENDPOINT_LISTS = web.AppKey("endpoint_lists", EndpointLists)
