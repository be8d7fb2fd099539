"""Reply tokens of approval requests: an HMAC over what the request is about, never stored.

A token reads ``zw<request id>-<signature>``, e.g. ``zw12-k3f7q2vxa9m4c8dn5bwe``. The signature is
an HMAC-SHA256, under the configured secret, of the request id, the leader's address, the action,
the expiry and every item with the version the leader was shown. So a token cannot be made up
without the secret, and it stops matching when any of those change: another item, a new version
of the text, another leader, a later expiry. Single use and expiry are checked against the
request row (daemon.approval).

The token travels in the Reply-To address (``zwxx+zw12-...@bureau``, for servers that deliver
plus-addressed mail) and in the subject, so a reply carries it back either way. Base32 in lower
case survives servers and clients that change the case of addresses or subjects.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

SIGNATURE_CHARS = 20  # 100 bits of base32
TOKEN_PATTERN = re.compile(rf"\bzw(\d{{1,12}})-([a-z2-7]{{{SIGNATURE_CHARS}}})\b", re.IGNORECASE)


@dataclass(frozen=True)
class TokenClaims:
    """Fields a token is bound to."""

    request_id: int
    leader: str
    action: str
    expires_at: datetime
    items: tuple[tuple[int, int], ...]  # (item id, item version), in list order


@dataclass(frozen=True)
class FoundToken:
    request_id: int
    signature: str

    def __str__(self) -> str:
        return f"zw{self.request_id}-{self.signature}"


def sign(secret: bytes, claims: TokenClaims) -> str:
    """Return the token text for ``claims``."""
    if not secret:
        raise ValueError("no approval secret configured")
    return str(FoundToken(claims.request_id, _signature(secret, claims)))


def verify(secret: bytes, token: FoundToken, claims: TokenClaims) -> bool:
    """Tell whether ``token`` was signed for exactly ``claims`` (compared in constant time)."""
    if not secret or token.request_id != claims.request_id:
        return False
    return hmac.compare_digest(token.signature.lower(), _signature(secret, claims))


def find_tokens(texts: Iterable[str]) -> list[FoundToken]:
    """Return every distinct token found in ``texts`` (addresses, subject), in order of appearance."""
    found: dict[tuple[int, str], FoundToken] = {}
    for text in texts:
        for match in TOKEN_PATTERN.finditer(text or ""):
            token = FoundToken(int(match.group(1)), match.group(2).lower())
            found.setdefault((token.request_id, token.signature), token)
    return list(found.values())


def reply_to_address(address: str, token: str, *, plus: bool) -> str:
    """Return ``address`` with the token as its plus-address detail, or unchanged when ``plus`` is off."""
    if not plus:
        return address
    local, _, domain = address.rpartition("@")
    return f"{local}+{token}@{domain}"


def _signature(secret: bytes, claims: TokenClaims) -> str:
    digest = hmac.new(secret, _canonical(claims), hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:SIGNATURE_CHARS]


def _canonical(claims: TokenClaims) -> bytes:
    items: Sequence[str] = [f"{item_id}.{version}" for item_id, version in claims.items]
    fields = [
        "zwxx-approval-v1",
        str(claims.request_id),
        claims.leader.strip().lower(),
        claims.action,
        str(int(claims.expires_at.timestamp())),
        ",".join(items),
    ]
    return "\n".join(fields).encode("utf-8")
