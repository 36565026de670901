"""Where a plugin's outbound request may go: host names against an allow-list, addresses against a policy.

Names are compared in one canonical form — lower case, IDNA (UTS 46) encoded, without a trailing dot; an IP
literal in its normal form — so ``Example.COM.``, ``example.com`` and a full-width spelling are one host.
Allow-list patterns are exact hosts, ``*.example.com`` (any name *under* example.com, at any depth, not
example.com itself; never an IP literal) or ``*`` (any host at all: the address policy still applies, so
``*`` means any host whose addresses are public, plus those inside an allowed network).

Addresses are judged as resolved, never as spelled. Refused: loopback, private, link-local, multicast,
unspecified, reserved, site-local, shared address space (100.64.0.0/10), anything else not globally
routable, and the cloud metadata services. An IPv6 address that embeds an IPv4 one (IPv4-mapped,
IPv4-compatible, 6to4, Teredo, NAT64) is refused when the embedded address would be. An explicitly
allowed network lifts the refusal for the addresses inside it — except for a metadata address, which only
a network of exactly that one address (``169.254.169.254/32``) lifts: a broad ``169.254.0.0/16`` allowed
for some appliance must not hand out instance credentials as well.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

import idna

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle…
        "169.254.170.2",  # AWS ECS task metadata and credentials
        "169.254.0.23",  # Tencent Cloud
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure WireServer: a public address, so named here
        "192.0.0.192",  # Oracle Cloud Classic
        "fd00:ec2::254",  # AWS over IPv6
    )
)
_SHARED = ip_network("100.64.0.0/10")
_NAT64 = (ip_network("64:ff9b::/96"),)
_LABELS = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
_MAX_NAME = 253


@dataclass(frozen=True)
class Refusal:
    address: IPAddress
    reason: str  # loopback, private, link_local, multicast, unspecified, reserved, shared, metadata…
    embedded: IPv4Address | None = None  # the IPv4 address inside an IPv6 one, when that is what is refused

    def detail(self) -> dict[str, str]:
        detail = {"address": str(self.address), "reason": self.reason}
        if self.embedded is not None:
            detail["embedded"] = str(self.embedded)
        return detail


def canonical_host(host: str) -> str:
    """``host`` (a URL's host, brackets removed) in the form the allow-list compares; ValueError if it is
    not a host name or IP literal."""
    if host.endswith("."):
        host = host[:-1]
    try:
        return ip_address(host).compressed
    except ValueError:
        pass
    try:
        name = host.lower() if host.isascii() else idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(f"not a valid host name: {exc}") from None
    if len(name) > _MAX_NAME or not _LABELS.fullmatch(name):
        raise ValueError("not a valid host name")
    return name


def canonical_pattern(pattern: str) -> str:
    """An allow-list entry in canonical form: ``*``, ``*.<name>`` or a host; ValueError if malformed."""
    pattern = pattern.strip()
    if pattern == "*":
        return pattern
    if pattern.startswith("*."):
        return "*." + canonical_host(pattern[2:])
    if "*" in pattern:
        raise ValueError(f"{pattern!r}: a wildcard is only '*' or a leading '*.'")
    return canonical_host(pattern.removeprefix("[").removesuffix("]"))


def host_allowed(host: str, patterns: Iterable[str]) -> bool:
    """Whether canonical ``host`` matches one of ``patterns`` (given in any spelling)."""
    is_ip = _is_ip(host)
    for pattern in map(canonical_pattern, patterns):
        if pattern == "*" or pattern == host:
            return True
        if pattern.startswith("*.") and not is_ip and host.endswith(pattern[1:]):
            return True
    return False


def refusal(address: IPAddress, allowed_networks: Iterable[IPNetwork] = ()) -> Refusal | None:
    """Why ``address`` may not be reached, or None; an allowed network lifts all but a metadata refusal."""
    allowed = tuple(allowed_networks)
    found = _judge(address)
    if found is None or _lifted(found, allowed):
        return None
    return found


def parse_networks(networks: Iterable[str]) -> tuple[IPNetwork, ...]:
    return tuple(ip_network(network, strict=False) for network in networks)


def _judge(address: IPAddress) -> Refusal | None:
    if isinstance(address, IPv6Address):
        embedded = list(_embedded_ipv4(address))
        for inner in embedded:
            if (reason := _reason(inner)) is not None:
                return Refusal(address, reason, inner)
        if embedded and (address.ipv4_mapped is not None or any(address in net for net in _NAT64)):
            return None  # these *are* their IPv4 address on the wire: judged as it, and it passed
    reason = _reason(address)
    return None if reason is None else Refusal(address, reason)


def _reason(address: IPAddress) -> str | None:
    if address in METADATA_ADDRESSES:
        return "metadata"
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link_local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("shared", address in _SHARED),
        ("site_local", isinstance(address, IPv6Address) and address.is_site_local),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("not_global", not address.is_global),
    )
    return next((reason for reason, applies in checks if applies), None)


def _embedded_ipv4(address: IPv6Address) -> Iterator[IPv4Address]:
    if address.ipv4_mapped is not None:
        yield address.ipv4_mapped
        return
    if address.sixtofour is not None:
        yield address.sixtofour
    if address.teredo is not None:
        yield from address.teredo
    compatible = int(address) >> 32 == 0 and int(address) > 1  # ::a.b.c.d, deprecated
    if compatible or any(address in net for net in _NAT64):
        yield IPv4Address(int(address) & 0xFFFFFFFF)


def _lifted(found: Refusal, allowed: tuple[IPNetwork, ...]) -> bool:
    targets = [found.address] + ([found.embedded] if found.embedded is not None else [])
    if found.reason == "metadata":
        return any(net.num_addresses == 1 and net.network_address in targets for net in allowed)
    mapped = isinstance(found.address, IPv6Address) and found.address.ipv4_mapped is not None
    if found.embedded is not None and not mapped:
        return any(found.address in net for net in allowed)  # 6to4, Teredo…: only the IPv6 address itself
    return any(target in net for target in targets for net in allowed)


def _is_ip(host: str) -> bool:
    try:
        ip_address(host)
    except ValueError:
        return False
    return True
