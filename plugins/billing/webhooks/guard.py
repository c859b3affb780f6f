"""The SSRF guard: which addresses a webhook may be delivered to.

An endpoint URL is chosen by whoever manages the catalog, and the dispatcher runs next to the
warehouse and, in the cloud, next to the instance metadata service. So a delivery is only made to
public addresses: never to private, loopback, link-local, unique-local, shared (CGNAT), multicast,
unspecified, reserved or cloud-metadata ones, unless the operator allows them in
`BILLING_WEBHOOK_ALLOW_HOSTS` (comma-separated hostnames, `*.suffix` wildcards, addresses or CIDRs).

The check runs on the resolved addresses, every one of them, and `transport.py` connects to the
address that was checked, so DNS cannot answer differently between the check and the connection.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

ALLOW_HOSTS_ENV = "BILLING_WEBHOOK_ALLOW_HOSTS"

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

CLOUD_METADATA = "a cloud metadata address"
# NOTE: all but Alibaba's sit in ranges refused anyway; naming them gives a clearer refusal and
# keeps them refused when a *hostname* is allowed (only an address or CIDR entry allows them).
CLOUD_METADATA_ADDRESSES = frozenset(
    ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, DigitalOcean, OpenStack …
        "fd00:ec2::254",  # AWS over IPv6
        "169.254.170.2",  # AWS ECS task metadata
        "100.100.100.200",  # Alibaba Cloud
        "169.254.0.23",  # Tencent Cloud
        "192.0.0.192",  # Oracle Cloud
    )
)
_UNIQUE_LOCAL = ip_network("fc00::/7")
_SHARED = ip_network("100.64.0.0/10")
_NAT64 = ip_network("64:ff9b::/96")


class RefusedAddress(Exception):
    """The endpoint's host is, or resolves to, an address webhooks may not be delivered to."""

    code = "refused_address"


@dataclass(frozen=True)
class AllowList:
    """What `BILLING_WEBHOOK_ALLOW_HOSTS` lets through despite the guard."""

    hosts: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, text: str) -> AllowList:
        hosts, suffixes, networks = set(), [], []
        for entry in (part.strip().lower() for part in text.split(",")):
            if not entry:
                continue
            try:
                networks.append(ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                if entry.startswith("*."):
                    suffixes.append(entry[1:].rstrip("."))
                else:
                    hosts.add(entry.rstrip("."))
        return cls(frozenset(hosts), tuple(suffixes), tuple(networks))

    @classmethod
    def from_env(cls) -> AllowList:
        return cls.parse(os.environ.get(ALLOW_HOSTS_ENV, ""))

    def allows_host(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return host in self.hosts or any(host.endswith(suffix) for suffix in self.suffixes)

    def allows_address(self, address: IPAddress) -> bool:
        address = _without_scope(address)
        return any(address.version == network.version and address in network for network in self.networks)


def check_addresses(host: str, addresses: list[IPAddress], allow: AllowList) -> None:
    """Raise RefusedAddress unless every address `host` resolved to may be delivered to."""
    host_allowed = allow.allows_host(host)
    for address in addresses:
        kind = forbidden_kind(address)
        if kind is None or allow.allows_address(address):
            continue
        if host_allowed and kind != CLOUD_METADATA:
            continue
        raise RefusedAddress(_refusal(host, address, kind, host_allowed=host_allowed))


def forbidden_kind(address: IPAddress) -> str | None:
    """What kind of non-public address `address` is ("a loopback address" …); None if public."""
    address = _embedded_ipv4(_without_scope(address))
    if address in CLOUD_METADATA_ADDRESSES:
        return CLOUD_METADATA
    checks = [
        ("an unspecified address", address.is_unspecified),
        ("a loopback address", address.is_loopback),
        ("a link-local address", address.is_link_local),
        ("a multicast address", address.is_multicast),
        ("a unique-local address", address.version == 6 and address in _UNIQUE_LOCAL),
        ("a private address", address.is_private),
        ("a shared (carrier-grade NAT) address", address.version == 4 and address in _SHARED),
        ("a reserved address", address.is_reserved or not address.is_global),
    ]
    return next((kind for kind, matches in checks if matches), None)


def _refusal(host: str, address: IPAddress, kind: str, *, host_allowed: bool) -> str:
    if host_allowed:
        hint = f"allowing the hostname is not enough: add the address to {ALLOW_HOSTS_ENV}"
    else:
        hint = f"set {ALLOW_HOSTS_ENV} to allow it"
    if _is_literal_of(host, address):
        return f"refused: {host.strip('[]')} is {kind} ({hint})"
    return f"refused: {host} resolves to {address}, {kind} ({hint})"


def _is_literal_of(host: str, address: IPAddress) -> bool:
    try:
        return ip_address(host.strip("[]")) == address
    except ValueError:
        return False


def _without_scope(address: IPAddress) -> IPAddress:
    if isinstance(address, IPv6Address) and address.scope_id:
        return IPv6Address(str(address).split("%")[0])
    return address


def _embedded_ipv4(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, NAT64), else the address itself."""
    if isinstance(address, IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return address
