"""``/codec/encode`` and ``/codec/decode``: the Temporal UI's remote codec, so an operator can
read encrypted payloads in the UI (``temporal server start-dev --ui-codec-endpoint``)."""

from __future__ import annotations

from aiohttp import web
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from hookline.api import response_models as out
from hookline.api.auth import require_admin
from hookline.api.errors import ApiError
from hookline.api.keys import SETTINGS, TEMPORAL
from hookline.api.requests import read_body
from hookline.api.route_table import RouteTable
from hookline.temporal.payload_codec import EncryptionCodec, PayloadKeyError

routes = RouteTable("codec")

CORS_HEADERS = {
    "Access-Control-Allow-Methods": "POST",
    "Access-Control-Allow-Headers": "content-type,x-namespace,authorization",
    "Access-Control-Allow-Credentials": "true",
}


@routes.route(
    "OPTIONS",
    "/codec/{action:encode|decode}",
    "CORS preflight of the codec",
    status=204,
    access="public",
    errors=(404, 429),
    operation_id="codec_preflight",
)
async def preflight(request: web.Request) -> web.Response:
    return web.Response(status=204, headers=_cors(request))


@routes.route(
    "POST",
    "/codec/{action:encode|decode}",
    "Encrypt or decrypt payloads for the Temporal UI",
    body=out.CodecPayloads,
    errors=(403, 404),
    access="codec",
    operation_id="codec_transcode",
    answer=out.CodecPayloads,  # protobuf's JSON as it is: the UI reads absent fields, not nulls
)
async def transcode(request: web.Request) -> web.Response:
    # Decoding opens every app's payloads: an admin key's business. (In development the local
    # UI calls with no key at all, which authentication lets through for the codec.)
    require_admin(request)
    codec = request.app[TEMPORAL].data_converter.payload_codec
    if not isinstance(codec, EncryptionCodec):
        raise ApiError(404, "not_found", "payload encryption is off (HOOKLINE_PAYLOAD_KEYS)")
    payloads = Payloads()
    try:
        # Bytes, not text(): JSON is UTF-8, whatever charset the request's content-type names.
        json_format.Parse(await read_body(request), payloads)
    except (json_format.ParseError, UnicodeDecodeError):
        raise ApiError(422, "invalid_json", 'expected {"payloads": [...]}') from None
    try:
        if request.match_info["action"] == "encode":
            result = await codec.encode(payloads.payloads)
        else:
            result = await codec.decode(payloads.payloads)
    except PayloadKeyError as err:
        raise ApiError(422, "validation_error", str(err)) from None
    body = json_format.MessageToDict(Payloads(payloads=result))
    return web.json_response(body, headers=_cors(request))


def _cors(request: web.Request) -> dict[str, str]:
    origin = request.headers.get("origin")
    if origin and origin in request.app[SETTINGS].codec_cors_origins:
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin", **CORS_HEADERS}
    return {}
