"""Every ``web.AppKey`` of the API application, in one place."""

from __future__ import annotations

from aiohttp import web
from temporalio.client import Client

from hookline.api.route_table import RouteTable
from hookline.config.settings import Settings
from hookline.contracts.destination_policy import DestinationPolicy
from hookline.delivery.endpoint_lists import EndpointLists
from hookline.storage.registry import Registry

SETTINGS = web.AppKey("settings", Settings)
DESTINATIONS = web.AppKey("destinations", DestinationPolicy)
REGISTRY = web.AppKey("registry", Registry)
TEMPORAL = web.AppKey("temporal", Client)
ENDPOINT_LISTS = web.AppKey("endpoint_lists", EndpointLists)
ROUTE_TABLES: web.AppKey[tuple[RouteTable, ...]] = web.AppKey("route_tables")
"""Every route of the app, which its OpenAPI document describes."""
