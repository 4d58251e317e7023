"""Which client a sign-up call comes from, for the per-address rate limit.

API Gateway's ``requestContext.http.sourceIp`` is the TCP peer it saw: the client, unless
the API sits behind a proxy (CloudFront), whose own address it then is. A proxy that
writes the client's address into a header of its own (``CloudFront-Viewer-Address:
<ip>:<port>``) can be named in ``SIGNUP_TRUSTED_PROXY_HEADER``; that header is read
instead. ``X-Forwarded-For`` never is: its first entry is whatever the client wrote.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# One IPv6 client commonly holds a whole /64 (SLAAC, privacy addresses): limiting single
# addresses would let it rotate through 2^64 of them.
IPV6_PREFIX = 64
_MAX_ADDRESS_TEXT = 100


def parse_address(value: str | None) -> IpAddress | None:
    """An IP address from ``ip``, ``ip:port`` or ``[ipv6]:port`` (CloudFront writes IPv6
    with its port and no brackets: ``2001:db8::1:443``); ``None`` for anything else."""
    text = (value or "").strip()
    if not text or len(text) > _MAX_ADDRESS_TEXT or "," in text:
        return None
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        return _ip(host) if sep and port.isdigit() else _ip(text[1:].removesuffix("]"))
    host, sep, port = text.rpartition(":")
    if sep and port.isascii() and port.isdigit() and len(port) <= 5:
        # "ip:port". A bare IPv6 address whose last group is all digits reads the same
        # way, losing that group: the same address always lands in the same bucket.
        with_port = _ip(host)
        if with_port is not None:
            return with_port
    return _ip(text)


def _ip(text: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def client_address(event: APIGatewayProxyEventV2, proxy_header: str = "") -> IpAddress | None:
    """The caller's address: from ``proxy_header`` when configured and readable, else
    API Gateway's ``sourceIp`` (a call that bypassed the proxy carries no such header)."""
    if proxy_header:
        found = parse_address(event.headers.get(proxy_header))
        if found is not None:
            return found
    return parse_address(event.request_context.http.source_ip)


def rate_limit_subject(address: IpAddress | None) -> str:
    """What the rate limit counts per: the IPv4 address, or the IPv6 address's /64."""
    if address is None:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)
