"""Schemathesis fuzzes the running API from its OpenAPI document: no answer is a 5xx, and
every answer has a documented status, content type and body."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.errors import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hookline.api.app import API_ROUTES
from hookline.api.errors import ApiError
from hookline.api.openapi import openapi_document
from hookline.api.url_rules import checked_endpoint_url
from hookline.config.settings import Settings
from hookline.storage.secret_box import generate_key
from hookline.temporal.client import connect_temporal
from tests.conftest import API_KEY
from tests.harness import Hookline, Receiver

MAX_EXAMPLES = 10
"""Per operation, generation mode and kind of path (random, or naming what exists)."""
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
REQUEST_TIMEOUT_S = 10.0
URL_FIELDS = ("url", "callback_url")

# derandomize: the same cases on every run (Hypothesis seeds from each test's source), so a
# failure in CI reproduces locally; no shrinking, to stay within the test's time.
FUZZ_SETTINGS = hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)


@pytest.fixture(params=["sqlite", "postgresql"])
async def fuzzed(
    request: pytest.FixtureRequest, settings: Settings, postgres_url: str | None
) -> AsyncIterator[Hookline]:
    """A running Hookline on either registry, with payload encryption on (so that the codec
    endpoints work too)."""
    update: dict[str, Any] = {"payload_keys": [generate_key()]}
    if request.param == "postgresql":
        if postgres_url is None:
            pytest.skip("set HOOKLINE_TEST_DATABASE_URL to fuzz with PostgreSQL")
        update["database_url"] = postgres_url
    sealed = settings.model_copy(update=update)
    async with Hookline.running(sealed, await connect_temporal(sealed), API_KEY) as hookline:
        yield hookline


async def test_fuzzed_requests_get_documented_answers_and_no_5xx(
    fuzzed: Hookline, receiver: Receiver
) -> None:
    known = await _known_ids(fuzzed, receiver)
    failures = await asyncio.to_thread(_fuzz, fuzzed, known, receiver.url)
    assert not failures, f"{len(failures)} operations failed:\n\n" + "\n\n".join(failures)


@pytest.mark.parametrize("fuzzed", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=no-such-charset"]
)
async def test_codec_refuses_a_body_that_is_not_utf8_with_a_422(
    fuzzed: Hookline, content_type: str
) -> None:
    # Found by the fuzz: a 500 from decoding the body.
    status, body = await fuzzed.call(
        "POST", "/codec/decode", data=b"\xf7hK", headers={"content-type": content_type}
    )
    assert (status, body["error"]["code"]) == (422, "invalid_json")


async def _known_ids(hookline: Hookline, receiver: Receiver) -> dict[str, str]:
    """Path parameters that name real resources, so that some cases get past the 404s."""
    app_id = await hookline.create_app("Fuzzed")
    endpoint = await hookline.create_endpoint(app_id, receiver.url)
    event = await hookline.send_event(app_id, "fuzz.started", {"n": 1}, id="fuzz-1")
    delivery_id = event["deliveries"][0]["id"]
    await hookline.wait_status(app_id, delivery_id, "succeeded")
    recovery = await hookline.ok(
        "POST",
        f"/v1/apps/{app_id}/endpoints/{endpoint['id']}/recover",
        {"since": "2020-01-01T00:00:00Z"},
    )
    return {
        "app_id": app_id,
        "endpoint_id": endpoint["id"],
        "event_id": event["id"],
        "delivery_id": delivery_id,
        "recovery_id": recovery["id"],
        "action": "decode",
    }


def _fuzz(hookline: Hookline, known: dict[str, str], loopback_url: str) -> list[str]:
    """Run every operation's cases (in a thread: the API runs on the test's event loop);
    the failure reports, one per failing operation and variant."""
    config = schemathesis.Config.from_dict(
        {"generation": {"with-security-parameters": False}}  # the real key, not made-up ones
    )
    schema = schemathesis.openapi.from_dict(openapi_document(API_ROUTES), config=config)
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # the document itself is invalid
        operations.append(result.ok())
    # Deleting the known endpoint goes last, so the other operations find it.
    operations.sort(key=lambda operation: operation.method.upper() == "DELETE")
    failures: list[str] = []
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {API_KEY}"
        for operation in operations:
            in_path = {p.name for p in operation.path_parameters}
            variants: list[dict[str, Any]] = [{}]
            if in_path:
                variants.append({name: known[name] for name in in_path})
            for path_parameters in variants:
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    strategy = operation.as_strategy(mode, path_parameters=path_parameters)
                    safe = strategy.map(
                        partial(
                            _to_loopback,
                            loopback_url=loopback_url,
                            settings=hookline.settings,
                            positive=mode == GenerationMode.POSITIVE,
                        )
                    )

                    @FUZZ_SETTINGS
                    @given(case=safe)
                    def run(case: Case[Any]) -> None:
                        case.call_and_validate(
                            base_url=hookline.api_url,
                            session=session,
                            checks=CHECKS,
                            timeout=REQUEST_TIMEOUT_S,
                        )

                    try:
                        run()
                    except Unsatisfiable:
                        pass  # nothing of this operation can be made invalid (negative mode)
                    except (FailureGroup, Exception) as err:
                        where = "known path" if path_parameters else "random path"
                        failures.append(f"{operation.label} ({mode.value}, {where}):\n{err}")
    return failures


def _to_loopback(
    case: Case[Any], loopback_url: str, settings: Settings, positive: bool
) -> Case[Any]:
    """Point the URLs of a case at the test's receiver, so that nothing the fuzz makes the API
    send (no delivery, no DNS lookup) leaves 127.0.0.1: every URL of a positive case (the rest
    of its body then gets checked too), and of a negative case each URL the API would accept
    (the one check that decides it)."""
    if not isinstance(case.body, dict):
        return case
    for field in URL_FIELDS:
        value = case.body.get(field)
        if isinstance(value, str) and (positive or _accepted(value, settings)):
            case.body[field] = loopback_url
    return case


def _accepted(url: str, settings: Settings) -> bool:
    try:
        checked_endpoint_url(url, settings.max_url_length)
    except ApiError:
        return False
    return True
