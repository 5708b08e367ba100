"""The one loopback check: whether a host (or a URL's host) is this machine's loopback.

Loopback means 127.0.0.0/8, ::1, ``localhost`` and names under ``.localhost``. A name is never
resolved: a host that is not loopback by its spelling needs the user's consent (``--yes``) before
load goes to it, in every tool alike, and whether the server runs here is decided the same way.
Standard library only: the runner's helper imports it before the virtual environment exists.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def host_of(url_or_host: str) -> str:
    """The host of a URL (scheme optional) or of a bare host, lower case, without brackets."""
    text = url_or_host.strip()
    bare = text.strip("[]")
    if ":" in bare and "://" not in text and _is_address(bare):
        return bare.lower()  # a bare IPv6 address
    if "://" not in text:
        text = f"http://{text}"
    try:
        return (urlsplit(text).hostname or "").lower()
    except ValueError:
        return ""


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_loopback(url_or_host: str) -> bool:
    """Whether a URL's host, or a host name or address, is loopback (never resolves a name)."""
    host = host_of(url_or_host)
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
