"""Where webhooks may go: no internal addresses in production (SSRF), HTTPS required there.

The same policy is applied when an endpoint is saved and again at every attempt, on the
address the attempt actually connects to (see ``activities.guarded_connector``).
"""

from __future__ import annotations

import ipaddress
from typing import Literal

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Cloud metadata services that sit on addresses `is_global` alone might not catch everywhere.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)


class DestinationPolicy:
    """Decides whether Hookline may connect to an address.

    Production refuses every address that is not globally routable: loopback, private,
    link-local (cloud metadata), multicast, reserved, shared and unspecified ranges.
    Development allows loopback, so receivers on the same machine work. Networks in the
    allowlist are always allowed.
    """

    def __init__(
        self, mode: Literal["development", "production"], allowed_networks: list[str]
    ) -> None:
        """
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
        return self.mode == "production"

    def refusal(self, address: str | IPAddress) -> str | None:
        """Why ``address`` is refused, or ``None`` if Hookline may connect to it."""
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        ip = _embedded_ipv4(ip)
        if any(ip in network for network in self._allowed):
            return None
        if ip.is_loopback:
            return None if self.mode == "development" else "a loopback address"
        if ip in METADATA_ADDRESSES:
            return "a cloud metadata address"
        if ip.is_multicast:
            return "a multicast address"
        if not ip.is_global:
            return "a private, link-local or reserved address"
        return None


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address carries (mapped, NAT64, 6to4, Teredo), else ``ip``:
    each of them reaches that IPv4 address, so that is the one to judge."""
    if isinstance(ip, ipaddress.IPv4Address):
        return ip
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return ip
