"""JWT authorizers: tokens signed by a JWKS key (RS256, ES256), issuer and audience as
API Gateway checks them, 401 with ``www-authenticate``, JWKS from a file or a URL."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from lakelet.errors import ConfigError
from lakelet.functions import App
from lakelet.functions.direct import DirectInvoker
from lakelet.functions.gateway import GatewaySettings, build_gateway
from lakelet.functions.gateway.auth import JwksSource, claim_text

with warnings.catch_warnings():  # Starlette prefers httpx2 for its test client
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

ISSUER = "https://auth.vending.example"
AUDIENCE = "vending-api"


class Signer:
    """A private key and its public JWK."""

    def __init__(self, kid: str, kind: str = "RSA") -> None:
        self.kid = kid
        if kind == "RSA":
            self.key: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.alg = "RS256"
            jwk = RSAAlgorithm.to_jwk(self.key.public_key())
        else:
            self.key = ec.generate_private_key(ec.SECP256R1())
            self.alg = "ES256"
            jwk = ECAlgorithm.to_jwk(self.key.public_key())
        self.jwk = {**json.loads(jwk), "kid": kid, "use": "sig"}

    def token(self, *, kid: str | None = None, alg: str | None = None, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 60}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        headers = {"kid": kid or self.kid}
        return jwt.encode(body, self.key, algorithm=alg or self.alg, headers=headers)


@pytest.fixture(scope="module")
def rsa_signer() -> Signer:
    return Signer("rsa-1")


@pytest.fixture(scope="module")
def ec_signer() -> Signer:
    return Signer("ec-1", "EC")


def jwt_app() -> App:
    app = App("jwt")

    @app.route("/me", auth="jwt")
    def me(event: Any, context: Any) -> Any:
        return event["requestContext"]["authorizer"]

    @app.route("/public")
    def public(event: Any, context: Any) -> Any:
        return "authorizer" in event["requestContext"]

    return app


def write_jwks(path: Path, *signers: Signer) -> Path:
    path.write_text(json.dumps({"keys": [s.jwk for s in signers]}))
    return path


@pytest.fixture
def http(tmp_path: Path, rsa_signer: Signer, ec_signer: Signer) -> TestClient:
    app = jwt_app()
    settings = GatewaySettings(
        jwt_issuer=ISSUER,
        jwt_audience=(AUDIENCE, "other-api"),
        jwks_file="jwks.json",
    )
    write_jwks(tmp_path / "jwks.json", rsa_signer, ec_signer)
    return TestClient(build_gateway(app, DirectInvoker(app), settings, base=tmp_path))


@pytest.mark.parametrize("signer_name", ["rsa_signer", "ec_signer"])
def test_a_valid_token_passes_its_claims(
    http: TestClient, request: pytest.FixtureRequest, signer_name: str
) -> None:
    signer: Signer = request.getfixturevalue(signer_name)
    token = signer.token(scope="sales:read sales:write", groups=["a", "b"], admin=True)
    response = http.get("/me", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200
    authorizer = response.json()
    claims = authorizer["jwt"]["claims"]
    assert claims["sub"] == "alice"
    assert claims["iss"] == ISSUER
    assert claims["groups"] == "[a b]"  # every claim a string, as API Gateway sends them
    assert claims["admin"] == "true"
    assert claims["exp"].isdigit()
    assert authorizer["jwt"]["scopes"] == ["sales:read", "sales:write"]


def test_the_bearer_prefix_is_optional(http: TestClient, rsa_signer: Signer) -> None:
    response = http.get("/me", headers={"authorization": rsa_signer.token()})
    assert response.status_code == 200


def test_an_access_token_may_name_its_audience_in_client_id(
    http: TestClient, rsa_signer: Signer
) -> None:
    token = rsa_signer.token(aud=None, client_id="other-api")
    assert http.get("/me", headers={"authorization": f"Bearer {token}"}).status_code == 200


def test_a_missing_token_is_a_401_with_a_challenge(http: TestClient) -> None:
    response = http.get("/me")
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["apigw-requestid"]


def test_routes_without_auth_get_no_authorizer(http: TestClient) -> None:
    assert http.get("/public").json() is False


def refusals(rsa: Signer, ec: Signer) -> list[tuple[str, str]]:
    stranger = Signer("rsa-1")  # same kid, another key: a forged signature
    now = int(time.time())
    return [
        (rsa.token(exp=now - 5), "expired"),
        (rsa.token(nbf=now + 300), "not valid"),
        (rsa.token(iss="https://evil.example"), "issuer"),
        (rsa.token(aud="someone-else"), "audience"),
        (rsa.token(aud=None), "audience"),
        (rsa.token(exp=None), "not valid"),
        (rsa.token(kid="unknown"), "kid"),
        (stranger.token(), "not valid"),
        (ec.token(kid="rsa-1"), "not valid"),  # an EC signature checked with an RSA key
        (jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "exp": now + 60}, "s" * 32), "algorithm"),
        (jwt.encode({"iss": ISSUER}, None, algorithm="none"), "algorithm"),
        ("not-a-jwt", "not a JWT"),
    ]


def test_bad_tokens_are_401s_saying_why(
    http: TestClient, rsa_signer: Signer, ec_signer: Signer
) -> None:
    for token, reason in refusals(rsa_signer, ec_signer):
        response = http.get("/me", headers={"authorization": f"Bearer {token}"})
        assert response.status_code == 401, reason
        assert response.json() == {"message": "Unauthorized"}
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith('Bearer error="invalid_token"'), reason
        assert reason in challenge


def test_a_key_declared_for_one_algorithm_refuses_another(
    tmp_path: Path, rsa_signer: Signer
) -> None:
    app = jwt_app()
    signer = Signer("pinned")
    signer.jwk["alg"] = "RS512"
    settings = GatewaySettings(
        jwt_issuer=ISSUER,
        jwt_audience=(AUDIENCE,),
        jwks_file=str(write_jwks(tmp_path / "k", signer)),
    )
    http = TestClient(build_gateway(app, DirectInvoker(app), settings))
    refused = http.get("/me", headers={"authorization": signer.token()})
    assert refused.status_code == 401
    assert "RS512" in refused.headers["www-authenticate"]
    assert http.get("/me", headers={"authorization": signer.token(alg="RS512")}).status_code == 200


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"jwks_file": "k.json"}, "jwt_issuer"),
        ({"jwt_issuer": ISSUER}, "jwks_url or jwks_file"),
        ({"jwt_issuer": ISSUER, "jwks_file": "missing.json"}, "missing.json"),
        ({"jwt_issuer": ISSUER, "jwks_file": "bad.json"}, "not JSON"),
        ({"jwt_issuer": ISSUER, "jwks_file": "empty.json"}, "no usable signing key"),
    ],
)
def test_jwt_settings_are_checked_when_the_gateway_is_built(
    tmp_path: Path, settings: dict[str, Any], message: str
) -> None:
    (tmp_path / "bad.json").write_text("{")
    (tmp_path / "empty.json").write_text('{"keys": [{"kty": "RSA"}]}')
    app = jwt_app()
    with pytest.raises(ConfigError, match=message):
        build_gateway(app, DirectInvoker(app), GatewaySettings(**settings), base=tmp_path)


def test_a_jwks_url_is_fetched_again_for_a_new_kid_but_not_too_often(
    rsa_signer: Signer,
) -> None:
    later = Signer("rsa-2")
    served = [rsa_signer]
    fetches: list[str] = []
    now = [1000.0]

    def fetch(url: str) -> bytes:
        fetches.append(url)
        return json.dumps({"keys": [s.jwk for s in served]}).encode()

    source = JwksSource(url="https://issuer/jwks", fetch=fetch, clock=lambda: now[0])

    async def lookups() -> list[bool]:
        found = [await source.key("rsa-1") is not None]
        served.append(later)  # the issuer rotates its keys
        found.append(await source.key("rsa-2") is not None)  # too soon to refetch
        now[0] += 31
        found.append(await source.key("rsa-2") is not None)
        found.append(await source.key("rsa-1") is not None)  # cached
        return found

    assert asyncio.run(lookups()) == [True, False, True, True]
    assert len(fetches) == 2


class JwksHandler(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def jwks_server(rsa_signer: Signer) -> Iterator[str]:
    handler = type(
        "Handler", (JwksHandler,), {"body": json.dumps({"keys": [rsa_signer.jwk]}).encode()}
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()
    server.server_close()


@pytest.mark.integration
def test_keys_are_fetched_from_a_jwks_url(jwks_server: str, rsa_signer: Signer) -> None:
    app = jwt_app()
    settings = GatewaySettings(jwt_issuer=ISSUER, jwt_audience=(AUDIENCE,), jwks_url=jwks_server)
    http = TestClient(build_gateway(app, DirectInvoker(app), settings))
    response = http.get("/me", headers={"authorization": f"Bearer {rsa_signer.token()}"})
    assert response.status_code == 200
    assert response.json()["jwt"]["claims"]["sub"] == "alice"


def test_claims_are_strings_as_api_gateway_sends_them() -> None:
    assert claim_text("x") == "x"
    assert claim_text(12) == "12"
    assert claim_text(False) == "false"
    assert claim_text(["a", 1, True]) == "[a 1 true]"
    assert claim_text({"k": "v"}) == '{"k":"v"}'
