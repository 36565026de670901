"""The run-scoped gateway token: what lets an executor call a run's plugins, and nothing else.

A token names one run, the plugins that run may call and when it stops working, signed with HMAC-SHA256
under the project's ``SECRET_KEY`` and a salt of its own (``django.core.signing``), so no other signed value
of the project (a session, a password-reset link) is a token and a token is nothing else. It is minted when
the worker starts the run on its executor and expires with the run: at its deadline, else after
``TOOL_TOKEN_TTL_S``; the gateway also refuses it as soon as the run is over, whatever the clock says.
Nothing is stored: the gateway checks the signature, then the run row it has to read anyway.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.core import signing

SALT = "agents.plugins.tokens.gateway"


class BadToken(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Claims:
    run_id: uuid.UUID
    plugins: frozenset[str]
    expires: int  # Unix seconds


def mint(*, run_id: uuid.UUID, plugins: list[str], expires_at: datetime) -> str:
    payload = {"r": run_id.hex, "p": sorted(set(plugins)), "e": int(expires_at.timestamp())}
    return signing.Signer(salt=SALT, algorithm="sha256").sign_object(payload, compress=False)


def read(token: str, *, now: float | None = None) -> Claims:
    """The token's claims; ``BadToken`` (``invalid_token`` or ``token_expired``) when it has none to give."""
    try:
        payload = signing.Signer(salt=SALT, algorithm="sha256").unsign_object(token)
        claims = Claims(uuid.UUID(hex=payload["r"]), frozenset(payload["p"]), int(payload["e"]))
    except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
        raise BadToken("invalid_token", "The gateway token is not valid.") from exc
    if claims.expires <= (time.time() if now is None else now):
        raise BadToken("token_expired", "The gateway token has expired.")
    return claims
