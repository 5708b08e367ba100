"""JWT pieces, read without verifying: base64url both ways and a token's claims.

The token manager reads a token's expiry from its claims; the access-control probes forge tokens
(tampered, expired, unsigned) from a real one. Neither checks a signature: that is the server's job.
"""

from __future__ import annotations

import base64
import json


def b64(data: bytes) -> str:
    """base64url without padding, as in a JWT."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    """Decode base64url with or without padding."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def claims(token: str) -> dict | None:
    """The claims of a three-part token (None when it is not one or they do not decode)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        data = json.loads(unb64(parts[1]))
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
