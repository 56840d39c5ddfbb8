"""Bearer-token auth: ``Authorization: Bearer <key>``, compared in constant time."""

from __future__ import annotations

import hmac

from pydantic import SecretStr

from ..errors import CrossrankError


class UnauthorizedError(CrossrankError):
    """Missing or wrong API key (HTTP 401)."""


class Authenticator:
    """Checks the ``Authorization`` header against the configured key (no key: everything passes)."""

    def __init__(self, key: SecretStr | None):
        self._key = key.get_secret_value().encode("utf-8") if key is not None else None

    @property
    def enabled(self) -> bool:
        return self._key is not None

    def check(self, authorization: str | None) -> None:
        """Raise :class:`UnauthorizedError` unless the header carries the key."""
        if self._key is None:
            return
        if not authorization:
            raise UnauthorizedError("missing API key: send 'Authorization: Bearer <key>'")
        scheme, _, token = authorization.partition(" ")
        # Compare even when the scheme is wrong, so timing does not tell the two failures apart.
        matches = hmac.compare_digest(token.strip().encode("utf-8"), self._key)
        if scheme.lower() != "bearer" or not matches:
            raise UnauthorizedError("invalid API key")
