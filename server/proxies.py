"""X-Forwarded-For / X-Forwarded-Proto, honoured only when the peer is a trusted proxy (WX_TRUSTED_PROXIES)."""

from __future__ import annotations

import ipaddress

# Tornado's own xheaders=True believes these headers from any client, which would let anyone
# pick the address the admin login throttle sees (CWE-348). Here only listed proxies count.


def parse_networks(raw: str) -> tuple:
    """'127.0.0.1, 10.0.0.0/8' -> networks; ValueError names the bad item."""
    networks = []
    for item in raw.split(","):
        item = item.strip()
        if item:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
    return tuple(networks)


def _trusted(ip: str, networks) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in net for net in networks)


def apply_forwarded(request, networks) -> None:
    """Rewrites request.remote_ip and request.protocol from a trusted proxy's headers, once."""
    if not networks or getattr(request, "_wx_forwarded", False) or not _trusted(request.remote_ip, networks):
        return
    request._wx_forwarded = True
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    # The client is the right-most address that is not one of our proxies.
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                break
            request.remote_ip = hop
            break
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[-1].strip().lower()
    if proto in ("http", "https"):
        request.protocol = proto
