"""Where webhooks may go: no internal addresses in production (SSRF), HTTPS required there.

The same policy is applied when an endpoint is saved and again at every attempt, on the
address the attempt actually connects to (see ``activities.guarded_connector``).

The policy is explicit and does not depend on the Python version: it never asks
``ipaddress`` whether an address ``is_global`` or ``is_private`` (those answers changed
between Python releases and missed IPv4 addresses carried inside IPv6 ones). Instead:

1. An IPv6 address of a form that carries an IPv4 address (``UNWRAPPED_FORMS``) is judged
   by that IPv4 address, since that is the host it reaches.
2. The address is looked up in ``REFUSED_RANGES``, the one table of refused networks (IPv4
   and IPv6, from the IANA special-purpose address registries); the most specific matching
   row gives the reason.
3. An IPv6 address outside ``2000::/3``, the only global unicast space, is refused as
   reserved.

``docs/security.md`` ("Destinations refused") mirrors both tables;
``tests/test_destinations.py`` fails when they drift apart.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Literal, NamedTuple

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

LOOPBACK = "a loopback address"
"""The one reason development mode lets through."""
METADATA = "a cloud metadata address"
PRIVATE = "a private address"
SHARED = "a shared (carrier-grade NAT) address"
LINK_LOCAL = "a link-local address"
SITE_LOCAL = "a site-local address"
UNSPECIFIED = "an unspecified address"
DOCUMENTATION = "a documentation address"
BENCHMARKING = "a benchmarking address"
MULTICAST = "a multicast address"
BROADCAST = "a broadcast address"
RESERVED = "a reserved address"
UNPARSEABLE = "not an IP address"


class RefusedRange(NamedTuple):
    """One row of the refused-networks table."""

    network: Network
    what: str
    reason: str


def _row(cidr: str, what: str, reason: str) -> RefusedRange:
    """A row of ``REFUSED_RANGES``."""
    return RefusedRange(ipaddress.ip_network(cidr), what, reason)


# docs/security.md, "Destinations refused", mirrors this table row for row (a test checks).
REFUSED_RANGES: tuple[RefusedRange, ...] = (
    # IPv4 (IANA IPv4 Special-Purpose Address Registry, and multicast / reserved space)
    _row("0.0.0.0/8", '"this network" (0.0.0.0 reaches this host)', UNSPECIFIED),
    _row("10.0.0.0/8", "private-use", PRIVATE),
    _row("100.64.0.0/10", "shared address space (carrier-grade NAT)", SHARED),
    _row("100.100.100.200/32", "Alibaba Cloud metadata service", METADATA),
    _row("127.0.0.0/8", "loopback (allowed in development mode)", LOOPBACK),
    _row("169.254.0.0/16", "link-local", LINK_LOCAL),
    _row("169.254.169.254/32", "metadata service (AWS, GCP, Azure, OCI and others)", METADATA),
    _row("169.254.170.2/32", "AWS ECS task credentials", METADATA),
    _row("169.254.170.23/32", "AWS EKS Pod Identity credentials", METADATA),
    _row("172.16.0.0/12", "private-use", PRIVATE),
    _row("192.0.0.0/24", "IETF protocol assignments", RESERVED),
    _row("192.0.2.0/24", "documentation (TEST-NET-1)", DOCUMENTATION),
    _row("192.88.99.0/24", "6to4 relay anycast (deprecated)", RESERVED),
    _row("192.168.0.0/16", "private-use", PRIVATE),
    _row("198.18.0.0/15", "benchmarking", BENCHMARKING),
    _row("198.51.100.0/24", "documentation (TEST-NET-2)", DOCUMENTATION),
    _row("203.0.113.0/24", "documentation (TEST-NET-3)", DOCUMENTATION),
    _row("224.0.0.0/4", "multicast", MULTICAST),
    _row("240.0.0.0/4", "reserved for future use", RESERVED),
    _row("255.255.255.255/32", "limited broadcast", BROADCAST),
    # IPv6 (IANA IPv6 Special-Purpose Address Registry, and address-space assignments)
    _row("::/128", "unspecified", UNSPECIFIED),
    _row("::1/128", "loopback (allowed in development mode)", LOOPBACK),
    _row("::/8", "reserved by IETF (IPv4-carrying forms in it are unwrapped first)", RESERVED),
    _row(
        "64:ff9b:1::/48",
        "NAT64 local-use prefix (RFC 8215): a local translator's, which may embed IPv4 anywhere",
        PRIVATE,
    ),
    _row("100::/64", "discard-only", RESERVED),
    _row("2001::/23", "IETF protocol assignments (Teredo is unwrapped first)", RESERVED),
    _row("2001:db8::/32", "documentation", DOCUMENTATION),
    _row("3fff::/20", "documentation", DOCUMENTATION),
    _row("5f00::/16", "segment routing (SRv6) SIDs", RESERVED),
    _row("fc00::/7", "unique local addresses", PRIVATE),
    _row("fd00:ec2::23/128", "AWS EKS Pod Identity credentials", METADATA),
    _row("fd00:ec2::254/128", "AWS metadata service", METADATA),
    _row("fe80::/10", "link-local", LINK_LOCAL),
    _row("fec0::/10", "site-local (deprecated)", SITE_LOCAL),
    _row("ff00::/8", "multicast", MULTICAST),
)
"""Every refused network, with what it is and the reason given; the most specific row that
contains an address decides (so a metadata ``/32`` wins over its link-local ``/16``)."""

GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
"""The only IPv6 space that is globally routed: an IPv6 address outside it is ``RESERVED``."""

_LOW_32 = 0xFFFFFFFF


class UnwrappedForm(NamedTuple):
    """An IPv6 form that carries an IPv4 address, and how to take it out."""

    network: ipaddress.IPv6Network
    what: str
    inner: Callable[[int], int]
    """From the IPv6 address (as an integer) to the IPv4 address it carries (as an integer)."""


def _low_32(value: int) -> int:
    """The last 32 bits (mapped, translated, compatible and NAT64 forms)."""
    return value & _LOW_32


def _sixtofour(value: int) -> int:
    """Bits 16 to 47 (6to4: ``2002:AABB:CCDD::/48``)."""
    return (value >> 80) & _LOW_32


def _teredo_client(value: int) -> int:
    """The last 32 bits inverted: Teredo stores the client's address with every bit flipped."""
    return ~value & _LOW_32


# docs/security.md, "Destinations refused", lists these forms too (a test checks).
UNWRAPPED_FORMS: tuple[UnwrappedForm, ...] = (
    UnwrappedForm(
        ipaddress.IPv6Network("::/96"),
        "IPv4-compatible (deprecated), except `::` and `::1`; e.g. `::127.0.0.1`",
        _low_32,
    ),
    UnwrappedForm(
        ipaddress.IPv6Network("::ffff:0:0/96"), "IPv4-mapped; e.g. `::ffff:10.0.0.1`", _low_32
    ),
    UnwrappedForm(
        ipaddress.IPv6Network("::ffff:0:0:0/96"),
        "IPv4-translated (SIIT); e.g. `::ffff:0:a9fe:a9fe`",
        _low_32,
    ),
    UnwrappedForm(
        ipaddress.IPv6Network("64:ff9b::/96"),
        "NAT64 well-known prefix, the last 32 bits; e.g. `64:ff9b::a9fe:a9fe`",
        _low_32,
    ),
    UnwrappedForm(
        ipaddress.IPv6Network("2002::/16"),
        "6to4, bits 16 to 47; e.g. `2002:a9fe:a9fe::1`",
        _sixtofour,
    ),
    UnwrappedForm(
        ipaddress.IPv6Network("2001::/32"),
        "Teredo, the client's address (the last 32 bits, inverted)",
        _teredo_client,
    ),
)
"""IPv6 forms judged by the IPv4 address they carry (they do not overlap one another)."""

_NOT_COMPATIBLE = ipaddress.IPv6Network("::/127")
"""``::`` and ``::1``: inside ``::/96`` but unspecified and loopback, not IPv4-compatible."""

_MOST_SPECIFIC_FIRST = sorted(REFUSED_RANGES, key=lambda row: -row.network.prefixlen)


class DestinationPolicy:
    """Decides whether Hookline may connect to an address.

    Production refuses every address in ``REFUSED_RANGES`` (loopback, private, shared,
    link-local, site-local, cloud metadata, documentation, benchmarking, multicast, broadcast,
    reserved, unspecified) and every IPv6 address outside ``2000::/3``, after unwrapping IPv6
    forms that carry an IPv4 address. Development allows loopback, so receivers on the same
    machine work. Networks in the allowlist are always allowed.
    """

    def __init__(
        self, mode: Literal["development", "production"], allowed_networks: list[str]
    ) -> None:
        """Make a policy.

        Args:
            mode: ``production`` or ``development``.
            allowed_networks: CIDR networks always allowed (e.g. ``10.20.0.0/16``).

        Raises:
            ValueError: a network is not valid CIDR.
        """
        self.mode = mode
        self._allowed: list[Network] = [
            ipaddress.ip_network(n, strict=False) for n in allowed_networks
        ]

    @property
    def requires_https(self) -> bool:
        """Whether only ``https://`` destinations are accepted (production)."""
        return self.mode == "production"

    def refusal(self, address: str | IPAddress) -> str | None:
        """Why Hookline may not connect to ``address``, or ``None`` if it may.

        Args:
            address: an IPv4 or IPv6 address; a string may carry brackets (``[::1]``) or a zone
                (``fe80::1%eth0``, as resolvers give for scoped addresses), both ignored.

        Returns:
            A human-readable reason (``"a loopback address"``, ``"a private address"``...),
            or ``None`` when the address is allowed. A string that is not an IP address is
            refused (``"not an IP address"``) rather than raising.
        """
        ip = _parsed(address)
        if ip is None:
            return UNPARSEABLE
        inner = embedded_ipv4(ip)
        candidates = (ip,) if inner is None else (ip, inner)
        if any(candidate in network for network in self._allowed for candidate in candidates):
            return None
        judged = inner or ip
        for row in _MOST_SPECIFIC_FIRST:
            if judged in row.network:
                if row.reason == LOOPBACK and self.mode == "development":
                    return None
                return row.reason
        if isinstance(judged, ipaddress.IPv6Address) and judged not in GLOBAL_UNICAST:
            return RESERVED
        return None


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, if it is of a form in ``UNWRAPPED_FORMS``.

    Each such form reaches that IPv4 address, so that is the address to judge.

    Args:
        ip: the address to look inside.

    Returns:
        The IPv4 address carried, or ``None`` (an IPv4 address, or an IPv6 address of no
        IPv4-carrying form).
    """
    if isinstance(ip, ipaddress.IPv4Address) or ip in _NOT_COMPATIBLE:
        return None
    for form in UNWRAPPED_FORMS:
        if ip in form.network:
            return ipaddress.IPv4Address(form.inner(int(ip)))
    return None


def _parsed(address: str | IPAddress) -> IPAddress | None:
    """``address`` as an address without zone, or ``None`` if it is not an IP address."""
    if isinstance(address, ipaddress.IPv6Address):
        return ipaddress.IPv6Address(int(address))  # drops a scope id
    if isinstance(address, ipaddress.IPv4Address):
        return address
    text = address.strip().removeprefix("[").removesuffix("]").partition("%")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
