"""SSRF protection: internal destinations refused when saved and at every attempt.

No test here makes a connection anywhere but 127.0.0.1: refused addresses are refused before
any connection, and the attempt-time test uses a loopback name, so even a broken guard would
only reach this machine.
"""

from __future__ import annotations

import ast
import ipaddress
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohappyeyeballs import AddrInfoType
from temporalio.client import Client
from yarl import URL

from hookline.activities.guarded_connector import DestinationRefusedError, GuardedConnector
from hookline.config.settings import Settings
from hookline.contracts import destination_policy as destination_policy
from hookline.contracts.destination_policy import (
    BENCHMARKING,
    BROADCAST,
    DOCUMENTATION,
    GLOBAL_UNICAST,
    LINK_LOCAL,
    LOOPBACK,
    METADATA,
    MULTICAST,
    PRIVATE,
    REFUSED_RANGES,
    RESERVED,
    SHARED,
    SITE_LOCAL,
    UNPARSEABLE,
    UNSPECIFIED,
    UNWRAPPED_FORMS,
    DestinationPolicy,
    embedded_ipv4,
)
from hookline.storage.secret_box import generate_key
from hookline.worker.running import running_worker
from tests.conftest import API_KEY
from tests.harness import Hookline, Receiver

REFUSED_EVERYWHERE = [
    "10.1.2.3",
    "172.16.0.9",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "fd00::1",
    "fe80::1",
    "::ffff:10.0.0.1",
    "fd00:ec2::254",
]


@pytest.mark.parametrize("address", REFUSED_EVERYWHERE)
def test_policy_refuses_internal_addresses_in_both_modes(address: str) -> None:
    for mode in ("development", "production"):
        assert DestinationPolicy(mode, []).refusal(address), (mode, address)


def test_policy_allows_public_loopback_in_development_and_the_allowlist() -> None:
    development = DestinationPolicy("development", [])
    production = DestinationPolicy("production", [])
    for public in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"):
        assert development.refusal(public) is None and production.refusal(public) is None
    for loopback in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        assert development.refusal(loopback) is None
        assert production.refusal(loopback) == "a loopback address"
    allowing = DestinationPolicy("production", ["10.20.0.0/16", "127.0.0.0/8"])
    assert allowing.refusal("10.20.3.4") is None and allowing.refusal("127.0.0.1") is None
    assert allowing.refusal("10.21.0.1")


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:10.0.0.1]/hook",
        "http://[fd00::1]:8080/hook",
    ],
)
async def test_internal_destinations_are_refused_when_saved(hookline: Hookline, url: str) -> None:
    app_id = await hookline.create_app()
    status, body = await hookline.call("POST", f"/v1/apps/{app_id}/endpoints", {"url": url})
    assert status == 422 and body["error"]["code"] == "destination_not_allowed", body

    endpoint = await hookline.create_endpoint(app_id, "http://127.0.0.1:9/ok")
    status, body = await hookline.call(
        "PATCH", f"/v1/apps/{app_id}/endpoints/{endpoint['id']}", {"url": url}
    )
    assert status == 422 and body["error"]["code"] == "destination_not_allowed", body
    status, body = await hookline.call(
        "POST", f"/v1/apps/{app_id}/events", {"type": "a.b", "payload": {}, "callback_url": url}
    )
    assert status == 422 and body["error"]["code"] == "destination_not_allowed", body


@pytest.fixture
def production(settings: Settings) -> Settings:
    return settings.model_copy(update={"mode": "production", "secrets_keys": [generate_key()]})


@pytest.fixture
async def production_api(production: Settings, temporal_client: Client) -> AsyncIterator[Hookline]:
    """The API in production mode, loopback allowlisted; no worker of its own."""
    allowing = production.model_copy(update={"allowed_networks": ["127.0.0.0/8", "::1/128"]})
    async with Hookline.running(allowing, temporal_client, API_KEY) as running:
        await running.stop_worker()
        yield running


async def test_production_requires_https_and_public_addresses(
    production: Settings, temporal_client: Client
) -> None:
    async with Hookline.running(production, temporal_client, API_KEY) as hookline:
        app_id = await hookline.create_app()
        base = f"/v1/apps/{app_id}/endpoints"
        status, body = await hookline.call("POST", base, {"url": "http://example.com/hook"})
        assert status == 422 and "https" in body["error"]["message"]
        for url in ("https://127.0.0.1/hook", "https://localhost/hook", "https://[::1]/"):
            status, body = await hookline.call("POST", base, {"url": url})
            assert status == 422 and body["error"]["code"] == "destination_not_allowed", url


async def test_attempts_check_the_address_they_connect_to(
    production_api: Hookline, production: Settings, temporal_client: Client, receiver: Receiver
) -> None:
    # Saved while loopback was allowlisted; the worker's policy (production, no allowlist)
    # refuses it when the attempt resolves the name: as a rebinding name would be refused.
    app_id = await production_api.create_app()
    url = receiver.url.replace("http://127.0.0.1", "https://localhost")
    await production_api.create_endpoint(app_id, url)
    event = await production_api.send_event(app_id, "batch.completed", {})

    async with running_worker(production, temporal_client):
        view = await production_api.wait_status(app_id, event["deliveries"][0]["id"], "failed")

    assert view["attempts"] == 1
    assert view["last_attempt"]["error"].startswith("destination refused: localhost")
    assert receiver.requests == []


@pytest.mark.parametrize("address", ["64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1", "2002:7f00:1::1"])
def test_policy_looks_inside_ipv6_wrapped_ipv4(address: str) -> None:
    assert DestinationPolicy("production", []).refusal(address)


# --- The explicit policy: IPv6 forms, the refused-ranges table, zones --------------------------

PROBES = ["::127.0.0.1", "::a9fe:a9fe", "::ffff:0:a9fe:a9fe", "64:ff9b:1::a00:1", "fec0::1"]
"""IPv6 forms Python 3.11's ``is_global`` calls global, though they reach internal hosts."""
PROBE_URLS = [
    "https://[::127.0.0.1]:19001/",
    "https://[::a9fe:a9fe]/",
    "https://[::ffff:0:a9fe:a9fe]/",
    "https://[64:ff9b:1::a00:1]/",
    "https://[fec0::1]/",
]

REPRESENTATIVES = [
    # (address, reason in production; development gives the same except for loopback)
    ("0.0.0.0", UNSPECIFIED),
    ("0.1.2.3", UNSPECIFIED),
    ("10.1.2.3", PRIVATE),
    ("100.64.0.1", SHARED),
    ("100.127.255.254", SHARED),
    ("100.100.100.200", METADATA),
    ("127.0.0.1", LOOPBACK),
    ("127.255.255.254", LOOPBACK),
    ("169.254.1.1", LINK_LOCAL),
    ("169.254.169.254", METADATA),
    ("169.254.170.2", METADATA),
    ("169.254.170.23", METADATA),
    ("172.16.0.9", PRIVATE),
    ("172.31.255.255", PRIVATE),
    ("192.0.0.8", RESERVED),
    ("192.0.2.1", DOCUMENTATION),
    ("192.88.99.1", RESERVED),
    ("192.168.1.1", PRIVATE),
    ("198.18.0.1", BENCHMARKING),
    ("198.19.255.254", BENCHMARKING),
    ("198.51.100.7", DOCUMENTATION),
    ("203.0.113.7", DOCUMENTATION),
    ("224.0.0.1", MULTICAST),
    ("239.255.255.250", MULTICAST),
    ("240.0.0.1", RESERVED),
    ("255.255.255.254", RESERVED),
    ("255.255.255.255", BROADCAST),
    ("::", UNSPECIFIED),
    ("::1", LOOPBACK),
    ("::1:0:0:0", RESERVED),
    ("ff::1", RESERVED),
    ("100::1", RESERVED),
    ("2001:2::1", RESERVED),
    ("2001:10::1", RESERVED),
    ("2001:1ff::1", RESERVED),
    ("2001:db8::1", DOCUMENTATION),
    ("3fff::1", DOCUMENTATION),
    ("3fff:fff::1", DOCUMENTATION),
    ("5f00::1", RESERVED),
    ("fc00::1", PRIVATE),
    ("fd00::1", PRIVATE),
    ("fd00:ec2::23", METADATA),
    ("fd00:ec2::254", METADATA),
    ("fe80::1", LINK_LOCAL),
    ("febf::1", LINK_LOCAL),
    ("fec0::1", SITE_LOCAL),
    ("feff::1", SITE_LOCAL),
    ("ff02::1", MULTICAST),
    # outside 2000::/3, the only global unicast space
    ("1000::1", RESERVED),
    ("4000::1", RESERVED),
    ("e000::1", RESERVED),
    ("64:ff9b::1:0:0:0", RESERVED),
    # every IPv4-carrying form, judged by the IPv4 address it carries
    ("::127.0.0.1", LOOPBACK),
    ("::10.0.0.1", PRIVATE),
    ("::a9fe:a9fe", METADATA),
    ("::0.0.0.2", UNSPECIFIED),
    ("::ffff:127.0.0.1", LOOPBACK),
    ("::ffff:192.168.0.1", PRIVATE),
    ("::ffff:169.254.169.254", METADATA),
    ("::ffff:0:a9fe:a9fe", METADATA),
    ("::ffff:0:7f00:1", LOOPBACK),
    ("::ffff:0:a00:1", PRIVATE),
    ("64:ff9b::a9fe:a9fe", METADATA),
    ("64:ff9b::7f00:1", LOOPBACK),
    ("64:ff9b::c0a8:1", PRIVATE),
    ("64:ff9b:1::a00:1", PRIVATE),  # local-use NAT64: refused whatever it carries
    ("64:ff9b:1:0:a:0:108:808", PRIVATE),  # 1.8.8.8 in the last 32 bits, 10.0.0.1 in a /64's
    ("64:ff9b:1::808:808", PRIVATE),
    ("2002:a9fe:a9fe::1", METADATA),
    ("2002:7f00:1::1", LOOPBACK),
    ("2002:c0a8:101::1", PRIVATE),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", LOOPBACK),  # Teredo, client 127.0.0.1
    ("2001:0:4136:e378:8000:63bf:5601:5601", METADATA),  # Teredo, client 169.254.169.254
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", PRIVATE),  # Teredo, client 10.0.0.1
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", DOCUMENTATION),  # Teredo, client 192.0.2.45
    # scoped (as resolvers give link-local addresses) and bracketed forms
    ("fe80::1%eth0", LINK_LOCAL),
    ("fe80::1%25eth0", LINK_LOCAL),
    ("[fe80::1%eth0]", LINK_LOCAL),
    ("[::1]", LOOPBACK),
    ("::ffff:127.0.0.1%lo", LOOPBACK),
    ("fd00::1%2", PRIVATE),
]

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "64:ff9b::808:808",
    "::ffff:8.8.8.8",
    "::ffff:0:808:808",
    "::8.8.8.8",
    "2002:808:808::1",
    "2002:0808:0808::1",
    "2001:0:4136:e378:8000:63bf:f7f7:f7f7",  # Teredo, client 8.8.8.8
    "2606:4700:4700::1111%eth0",
]


@pytest.mark.parametrize("address", PROBES)
def test_ipv6_forms_python_calls_global_are_refused(address: str) -> None:
    assert DestinationPolicy("production", []).refusal(address)
    for mode in ("development", "production"):
        if address != "::127.0.0.1":  # loopback, allowed in development
            assert DestinationPolicy(mode, []).refusal(address), (mode, address)


@pytest.mark.parametrize(("address", "reason"), REPRESENTATIVES)
def test_refused_ranges_and_unwrapped_forms(address: str, reason: str) -> None:
    assert DestinationPolicy("production", []).refusal(address) == reason
    in_development = None if reason == LOOPBACK else reason
    assert DestinationPolicy("development", []).refusal(address) == in_development


def test_every_row_of_the_table_has_a_representative() -> None:
    """A row added to REFUSED_RANGES without a representative above fails here."""
    probed = [ipaddress.ip_address(a.strip("[]").partition("%")[0]) for a, _ in REPRESENTATIVES]
    for row in REFUSED_RANGES:
        assert any(ip in row.network for ip in probed), row.network
    for form in UNWRAPPED_FORMS:
        assert any(ip in form.network for ip in probed), form.network


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_and_forms_carrying_them_are_allowed(address: str) -> None:
    for mode in ("development", "production"):
        assert DestinationPolicy(mode, []).refusal(address) is None, (mode, address)


def test_unwrapping_agrees_with_the_standard_library() -> None:
    """The explicit unwrapping takes out the same IPv4 address ``ipaddress`` documents."""
    for text in ("::ffff:10.1.2.3", "2002:c0a8:101::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2"):
        ip = ipaddress.IPv6Address(text)
        expected = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        assert embedded_ipv4(ip) == expected, text
    loopback = ipaddress.IPv4Address("127.0.0.1")
    assert embedded_ipv4(ipaddress.IPv6Address("::127.0.0.1")) == loopback
    assert embedded_ipv4(ipaddress.IPv6Address("::1")) is None
    assert embedded_ipv4(ipaddress.IPv6Address("::")) is None
    assert embedded_ipv4(ipaddress.IPv6Address("2606:4700:4700::1111")) is None


def test_policy_does_not_ask_ipaddress_what_is_global() -> None:
    """The policy is explicit: no ``is_global``/``is_private``... whose answers vary by Python."""
    tree = ast.parse(Path(destination_policy.__file__).read_text())
    attributes = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    assert not {a for a in attributes if a.startswith("is_")}, attributes
    assert not attributes & {"ipv4_mapped", "sixtofour", "teredo"}


def test_address_objects_and_unparseable_strings() -> None:
    production = DestinationPolicy("production", [])
    assert production.refusal(ipaddress.ip_address("::ffff:127.0.0.1")) == LOOPBACK
    assert production.refusal(ipaddress.ip_address("fe80::1%eth0")) == LINK_LOCAL
    assert production.refusal(ipaddress.ip_address("8.8.8.8")) is None
    for garbage in ("", "1::2::3", "example.com", "127.1", "%eth0", "[]"):
        assert production.refusal(garbage) == UNPARSEABLE, garbage


def test_the_allowlist_matches_the_address_or_the_one_it_carries() -> None:
    allowing = DestinationPolicy("production", ["10.20.0.0/16", "64:ff9b::/96", "fd12::/16"])
    for address in ("10.20.3.4", "::ffff:10.20.3.4", "64:ff9b::a14:304", "64:ff9b::7f00:1"):
        assert allowing.refusal(address) is None, address
    assert allowing.refusal("fd12::1%eth0") is None
    assert allowing.refusal("::ffff:10.21.0.1") == PRIVATE
    assert allowing.refusal("64:ff9b:1::a14:304") == PRIVATE  # local-use NAT64: never unwrapped
    assert allowing.refusal("2002:a15:1::1") == PRIVATE  # carries 10.21.0.1
    assert allowing.refusal("fd13::1") == PRIVATE


# --- Save time: the API refuses the probes --------------------------------------------------


@pytest.fixture
async def strict_api(production: Settings, temporal_client: Client) -> AsyncIterator[Hookline]:
    """The API in production mode with no allowlist; no worker, so nothing is ever sent."""
    async with Hookline.running(production, temporal_client, API_KEY) as running:
        await running.stop_worker()
        yield running


async def _json_error(hookline: Hookline, method: str, path: str, body: Any) -> tuple[int, Any]:
    """Call the API; the status and JSON body of an answer that must be a JSON error."""
    async with hookline.http.request(method, hookline.api_url + path, json=body) as resp:
        assert resp.content_type == "application/json", (resp.status, await resp.text())
        answer = await resp.json()
    assert isinstance(answer["error"]["message"], str), answer
    return resp.status, answer


@pytest.mark.parametrize("url", PROBE_URLS)
async def test_probe_urls_are_refused_when_saved(strict_api: Hookline, url: str) -> None:
    reason = DestinationPolicy("production", []).refusal(URL(url).host or "")
    assert reason
    app_id = await strict_api.create_app()
    refused = (422, "destination_not_allowed")

    status, body = await _json_error(
        strict_api, "POST", f"/v1/apps/{app_id}/endpoints", {"url": url}
    )
    assert (status, body["error"]["code"]) == refused and reason in body["error"]["message"]

    # A public IP literal: no DNS lookup, and with no worker and no event nothing is sent.
    endpoint = await strict_api.create_endpoint(app_id, "https://93.184.216.34/hook")
    status, body = await _json_error(
        strict_api, "PATCH", f"/v1/apps/{app_id}/endpoints/{endpoint['id']}", {"url": url}
    )
    assert (status, body["error"]["code"]) == refused, body
    view = await strict_api.ok("GET", f"/v1/apps/{app_id}/endpoints/{endpoint['id']}")
    assert view["url"] == "https://93.184.216.34/hook"

    empty_app = await strict_api.create_app("No endpoints")
    event = {"type": "a.b", "payload": {}, "callback_url": url}
    status, body = await _json_error(strict_api, "POST", f"/v1/apps/{empty_app}/events", event)
    assert (status, body["error"]["code"]) == refused, body


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("https://[fe80::1%25eth0]/hook", "destination_not_allowed"),
        ("https://[fe80::1%eth0]:8443/hook", "destination_not_allowed"),
        ("https://[::ffff:127.0.0.1%25lo]/", "destination_not_allowed"),
        ("https://[::FFFF:A9FE:A9FE]/", "destination_not_allowed"),
        ("https://[0:0:0:0:0:0:7f00:1]/", "destination_not_allowed"),
        ("https://[1::2::3]/", "invalid_url"),
        ("https://[::1::]/", "invalid_url"),
        ("https://[fe80::1%]/", "destination_not_allowed"),
        ("https://[zz]/", "invalid_url"),
    ],
)
async def test_odd_ipv6_literals_are_a_422_not_a_500(
    strict_api: Hookline, url: str, code: str
) -> None:
    app_id = await strict_api.create_app()
    status, body = await _json_error(
        strict_api, "POST", f"/v1/apps/{app_id}/endpoints", {"url": url}
    )
    assert (status, body["error"]["code"]) == (422, code), body


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("https://xn--a.com/", "invalid_url"),  # not valid IDNA: yarl raises on .host
        ("https://a..b/", "invalid_url"),
        ("https://.example.com/", "invalid_url"),
        ("https://example.com../", "invalid_url"),
        ("https://10.0.0.1./", "destination_not_allowed"),  # judged as 10.0.0.1
        ("https://127.0.0.1./hook", "destination_not_allowed"),
        ("https://169.254.169.254./latest", "destination_not_allowed"),
        ("http://10.0.0.1./", "invalid_url"),  # plain HTTP, refused first in production
    ],
)
async def test_odd_hosts_are_a_422_not_a_500_nor_saved(
    strict_api: Hookline, url: str, code: str
) -> None:
    app_id = await strict_api.create_app()
    status, body = await _json_error(
        strict_api, "POST", f"/v1/apps/{app_id}/endpoints", {"url": url}
    )
    assert (status, body["error"]["code"]) == (422, code), body
    endpoint = await strict_api.create_endpoint(app_id, "https://93.184.216.34/hook")
    status, body = await _json_error(
        strict_api, "PATCH", f"/v1/apps/{app_id}/endpoints/{endpoint['id']}", {"url": url}
    )
    assert (status, body["error"]["code"]) == (422, code), body


async def test_a_public_ip_with_a_trailing_dot_is_judged_as_that_ip(strict_api: Hookline) -> None:
    app_id = await strict_api.create_app()
    created = await strict_api.create_endpoint(app_id, "https://93.184.216.34./hook")
    assert created["url"] == "https://93.184.216.34./hook"


# --- Connect time: the guarded connector refuses them before any connection -------------------


@dataclass
class ConnectRecorder:
    """A socket factory for aiohttp's connector that sees every connection it would open,
    and refuses (without opening a socket) any to an address other than 127.0.0.1."""

    addresses: list[str] = field(default_factory=list)

    def __call__(self, addr_info: AddrInfoType) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        self.addresses.append(str(sockaddr[0]))
        if sockaddr[0] != "127.0.0.1":
            raise OSError(f"this test connects to 127.0.0.1 only, not {sockaddr[0]}")
        return socket.socket(family=family, type=type_, proto=proto)


async def _post_through(policy: DestinationPolicy, recorder: ConnectRecorder, url: str) -> int:
    connector = GuardedConnector(policy, socket_factory=recorder)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.post(url, data=b"{}") as resp,
    ):
        return resp.status


async def test_the_recorder_sees_connections(receiver: Receiver) -> None:
    """The check below is worth something: a connection the guard lets through is seen."""
    recorder = ConnectRecorder()
    assert await _post_through(DestinationPolicy("development", []), recorder, receiver.url) == 200
    assert recorder.addresses == ["127.0.0.1"] and len(receiver.requests) == 1


@pytest.mark.parametrize(
    "url", [*PROBE_URLS, "https://[fe80::1%25eth0]/", "http://127.0.0.1:{port}/hook"]
)
async def test_guarded_connector_refuses_before_connecting(receiver: Receiver, url: str) -> None:
    port = URL(receiver.url).port
    url = url.replace(":19001", f":{port}").format(port=port)
    recorder = ConnectRecorder()
    with pytest.raises(aiohttp.ClientConnectorError) as caught:
        await _post_through(DestinationPolicy("production", []), recorder, url)
    assert isinstance(caught.value.os_error, DestinationRefusedError), caught.value
    assert recorder.addresses == [], "a connection was attempted"
    assert receiver.requests == []


# --- The docs mirror the tables ----------------------------------------------------------------

SECURITY_DOC = Path(__file__).parent.parent / "docs" / "security.md"


def _section(markdown: str, title: str) -> list[str]:
    """The lines of the section headed ``title``, up to the next heading of its level or up."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip("#").strip() == title)
    level = len(lines[start]) - len(lines[start].lstrip("#"))
    section = []
    for line in lines[start + 1 :]:
        hashes = len(line) - len(line.lstrip("#"))
        if 0 < hashes <= level and line[hashes : hashes + 1] == " ":
            break
        section.append(line)
    return section


def test_the_docs_list_every_refused_range_and_unwrapped_form() -> None:
    section = _section(SECURITY_DOC.read_text(), "Destinations refused")
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in section
        if re.match(r"^\|\s*`[0-9a-f:.]+/\d+`", line.strip())
    ]
    documented = [(ipaddress.ip_network(r[0].strip("`")), r[1], r[2]) for r in rows]
    assert documented == [(row.network, row.what, row.reason) for row in REFUSED_RANGES]

    bullets = [re.match(r"^- `([^`]+)`: (.+)$", line.strip()) for line in section]
    listed = [(ipaddress.ip_network(bullet[1]), bullet[2]) for bullet in bullets if bullet]
    assert listed == [(form.network, form.what) for form in UNWRAPPED_FORMS]
    assert f"`{GLOBAL_UNICAST}`" in "\n".join(section)
