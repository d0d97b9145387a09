"""Who may call a route: API keys (``x-api-key``) and JWT authorizers.

The JWT authorizer checks what API Gateway's does: a signature by a key of the JWKS
(matched by ``kid``), ``exp``/``nbf``, the issuer, and an audience in ``aud`` (or, for
access tokens without one, ``client_id``). The claims reach the handler as
``requestContext.authorizer.jwt.claims``, every value a string as API Gateway sends them.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from lakelet.errors import ConfigError

log = logging.getLogger("lakelet.functions.gateway")

ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "ES512"})
KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC"}  # the JWK kty each algorithm needs
JWKS_TIMEOUT_S = 5.0
JWKS_MIN_REFRESH_S = 30.0  # an unknown kid refetches the JWKS at most this often


@dataclass(frozen=True)
class Denied:
    """A refused request: ``401``/``403`` with API Gateway's message."""

    status: int
    message: str
    www_authenticate: str | None = None


FORBIDDEN = Denied(403, "Forbidden")


@dataclass(frozen=True)
class SigningKey:
    """A public key of the JWKS, and the algorithm it is declared for (if any)."""

    key: Any
    kty: str
    alg: str | None


class ApiKeys:
    """The keys ``auth="api_key"`` routes accept in ``x-api-key``; a missing or unknown
    key is a 403, as API Gateway answers."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._keys = tuple(k.encode() for k in keys)

    def check(self, presented: str | None) -> Denied | None:
        if presented is None:
            return FORBIDDEN
        given = presented.encode("latin-1")
        ok = False
        for key in self._keys:  # compare with every key, in constant time
            ok |= hmac.compare_digest(given, key)
        return None if ok else FORBIDDEN


class JwksSource:
    """Signing keys by ``kid``, from a JWKS file (read once) or URL (fetched when a
    token names a key not seen yet, at most every :data:`JWKS_MIN_REFRESH_S`)."""

    def __init__(
        self,
        *,
        url: str | None = None,
        file: Path | None = None,
        fetch: Callable[[str], bytes] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (url is None) == (file is None):
            raise ConfigError("[functions.gateway]: set one of jwks_url or jwks_file")
        self.url = url
        self._fetch = fetch or _http_get
        self._clock = clock
        self._keys: dict[str, SigningKey] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        if file is not None:
            try:
                text = file.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(
                    f"[functions.gateway] jwks_file {str(file)!r}: cannot read it ({exc})"
                ) from None
            try:
                self._keys = _parse_jwks(text)
            except ValueError as exc:
                raise ConfigError(f"[functions.gateway] jwks_file {str(file)!r}: {exc}") from None

    async def key(self, kid: str) -> SigningKey | None:
        found = self._keys.get(kid)
        if found is not None or self.url is None:
            return found
        async with self._lock:
            found = self._keys.get(kid)
            now = self._clock()
            recent = self._fetched_at is not None and now - self._fetched_at < JWKS_MIN_REFRESH_S
            if found is None and not recent:
                self._fetched_at = now
                try:
                    body = await asyncio.to_thread(self._fetch, self.url)
                    self._keys = _parse_jwks(body.decode("utf-8"))
                except (OSError, ValueError, UnicodeDecodeError) as exc:
                    log.warning("cannot load the JWKS from %s: %s", self.url, exc)
                found = self._keys.get(kid)
        return found


class JwtAuthorizer:
    """Validates bearer tokens for ``auth="jwt"`` routes."""

    def __init__(
        self, issuer: str, audience: Iterable[str], jwks: JwksSource, *, leeway_s: float = 0.0
    ) -> None:
        self.issuer = issuer
        self.audience = frozenset(audience)
        self.jwks = jwks
        self.leeway_s = leeway_s

    async def authorize(self, authorization: str | None) -> dict[str, Any] | Denied:
        """The ``requestContext.authorizer`` of a valid token, or why it is refused."""
        if not authorization:
            return Denied(401, "Unauthorized", "Bearer")
        token = authorization.strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            return _invalid("the token is not a JWT")
        alg = header.get("alg")
        kid = header.get("kid")
        if alg not in ALGORITHMS:
            return _invalid(f"the token's algorithm {alg!r} is not accepted")
        if not isinstance(kid, str):
            return _invalid("the token has no kid")
        key = await self.jwks.key(kid)
        if key is None:
            return _invalid("the token's kid is not in the JWKS")
        if key.alg is not None and key.alg != alg:
            return _invalid(f"the key {kid!r} is for {key.alg}, not {alg}")
        if KEY_TYPES[alg[:2]] != key.kty:
            return _invalid(f"the token is not valid: the key {kid!r} is not for {alg}")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"verify_aud": False, "require": ["exp", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            return _invalid("the token has expired")
        except jwt.InvalidIssuerError:
            return _invalid("the token's issuer is not accepted")
        except jwt.PyJWTError as exc:
            return _invalid(f"the token is not valid: {exc}")
        if self.audience and not self._audience_ok(claims):
            return _invalid("the token's audience is not accepted")
        context: dict[str, Any] = {"claims": {k: claim_text(v) for k, v in claims.items()}}
        scopes = _scopes(claims)
        if scopes:
            context["scopes"] = scopes
        return {"jwt": context}

    def _audience_ok(self, claims: Mapping[str, Any]) -> bool:
        aud = claims.get("aud")
        if aud is not None:
            values = [aud] if isinstance(aud, str) else aud
            return isinstance(values, list) and any(a in self.audience for a in values)
        return claims.get("client_id") in self.audience


def claim_text(value: Any) -> str:
    """A claim as API Gateway passes it: strings; arrays as ``[a b]``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + " ".join(claim_text(v) for v in value) + "]"
    return json.dumps(value, separators=(",", ":"))


def _scopes(claims: Mapping[str, Any]) -> list[str]:
    scope = claims.get("scope", claims.get("scp"))
    if isinstance(scope, str):
        return scope.split()
    if isinstance(scope, list):
        return [str(s) for s in scope]
    return []


def _invalid(reason: str) -> Denied:
    return Denied(
        401, "Unauthorized", f'Bearer error="invalid_token", error_description="{reason}"'
    )


def _parse_jwks(text: str) -> dict[str, SigningKey]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ValueError('not a JWKS (expected {"keys": [...]})')
    keys: dict[str, SigningKey] = {}
    for entry in data["keys"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue  # a key without kid cannot be chosen by a token
        if entry.get("use", "sig") != "sig":
            continue
        try:
            alg = entry.get("alg")
            public = jwt.PyJWK(entry).key
            keys[entry["kid"]] = SigningKey(
                public, str(entry["kty"]), alg if isinstance(alg, str) else None
            )
        except (jwt.PyJWTError, KeyError, TypeError, ValueError) as exc:
            log.warning("JWKS: skipping key %r: %s", entry["kid"], exc)
    if not keys:
        raise ValueError("no usable signing key (each needs kid, kty and key material)")
    return keys


def _http_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=JWKS_TIMEOUT_S) as response:
        body: bytes = response.read()
        return body
