"""본인인증 providers: the OpenID Connect provider against a local issuer (127.0.0.1) that signs real ID
tokens; only name, birth date, phone and the CI survive, and a 주민등록번호 is refused."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from authlib.jose import JsonWebKey, jwt

from geo.auth.identity import LocalTestProvider, OIDCProvider, provider_from_settings
from geo.errors import InvalidQuery, Unauthenticated
from geo.settings import Settings

CLIENT_ID, SECRET = "dolbom-test", "s3cret"


class Issuer:
    """A minimal OIDC issuer: discovery, JWKS, token endpoint (code -> signed ID token), userinfo."""

    def __init__(self) -> None:
        self.key = JsonWebKey.generate_key("RSA", 2048, is_private=True, options={"kid": "k1"})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.nonce = ""
        self.userinfo: dict[str, Any] = {}
        self.token_requests: list[dict[str, list[str]]] = []
        self.audience = CLIENT_ID

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _json(self, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                path = urlparse(self.path).path
                if path == "/.well-known/openid-configuration":
                    self._json({"issuer": issuer.url, "authorization_endpoint": f"{issuer.url}/authorize",
                                "token_endpoint": f"{issuer.url}/token", "jwks_uri": f"{issuer.url}/jwks",
                                "userinfo_endpoint": f"{issuer.url}/userinfo"})
                elif path == "/jwks":
                    self._json({"keys": [issuer.key.as_dict(is_private=False)]})
                elif path == "/userinfo":
                    assert self.headers["Authorization"] == "Bearer at-1"
                    self._json(issuer.userinfo)
                else:
                    self.send_error(404)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                issuer.token_requests.append(parse_qs(self.rfile.read(length).decode()))
                now = int(time.time())
                claims = {"iss": issuer.url, "aud": issuer.audience, "sub": "user-1", "iat": now, "exp": now + 300,
                          "nonce": issuer.nonce, "name": "김엄마", "birthdate": "1990-03-04"}
                id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, issuer.key).decode()
                self._json({"access_token": "at-1", "token_type": "Bearer", "expires_in": 300, "id_token": id_token})

        return Handler


@pytest.fixture()
def issuer() -> Iterator[Issuer]:
    iss = Issuer()
    thread = threading.Thread(target=iss.server.serve_forever, daemon=True)
    thread.start()
    yield iss
    iss.server.shutdown()
    iss.server.server_close()


def _settings(issuer: Issuer) -> Settings:
    return Settings(DOLBOM_IDENTITY_PROVIDER="oidc", DOLBOM_OIDC_ISSUER=issuer.url, DOLBOM_OIDC_CLIENT_ID=CLIENT_ID,
                    DOLBOM_OIDC_CLIENT_SECRET=SECRET, DOLBOM_OIDC_REDIRECT_URI="http://127.0.0.1/auth/identity/callback")


def test_oidc_code_flow_keeps_only_provider_fields(issuer: Issuer) -> None:
    provider = provider_from_settings(_settings(issuer))
    assert isinstance(provider, OIDCProvider)
    url = urlparse(provider.authorization_url(state="st-1", nonce="n-1"))
    query = parse_qs(url.query)
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{issuer.url}/authorize"
    assert query["state"] == ["st-1"] and query["nonce"] == ["n-1"] and query["client_id"] == [CLIENT_ID]
    assert query["response_type"] == ["code"] and "openid" in query["scope"][0]
    issuer.nonce = "n-1"
    issuer.userinfo = {"sub": "user-1", "phone_number": "010-1234-5678", "ci": "CI-ABC==", "gender": "F",
                       "resident_registration_number": "900304-2345678"}
    identity = provider.complete({"code": "code-1", "state": "st-1"}, nonce="n-1")
    assert (identity.name, identity.birth_date, identity.phone, identity.ci) == (
        "김엄마", date(1990, 3, 4), "010-1234-5678", "CI-ABC==")
    assert set(vars(identity)) == {"provider", "name", "birth_date", "phone", "ci"}
    assert issuer.token_requests[0]["code"] == ["code-1"]


def test_oidc_rejects_wrong_nonce_audience_and_errors(issuer: Issuer) -> None:
    provider = OIDCProvider(_settings(issuer))
    issuer.userinfo = {"ci": "CI-1"}
    issuer.nonce = "other"
    with pytest.raises(Unauthenticated):
        provider.complete({"code": "c"}, nonce="n-1")
    issuer.nonce, issuer.audience = "n-1", "someone-else"
    with pytest.raises(Unauthenticated):
        provider.complete({"code": "c"}, nonce="n-1")
    with pytest.raises(Unauthenticated, match="access_denied"):
        provider.complete({"error": "access_denied"}, nonce="n-1")


def test_rrn_and_missing_configuration_refused(issuer: Issuer) -> None:
    provider = OIDCProvider(_settings(issuer))
    issuer.nonce = "n-1"
    issuer.userinfo = {"ci": "CI-1", "birthdate": "9003042345678"}
    with pytest.raises(InvalidQuery, match="주민등록번호"):
        provider.complete({"code": "c"}, nonce="n-1")
    with pytest.raises(InvalidQuery):
        OIDCProvider(Settings(DOLBOM_OIDC_ISSUER=issuer.url))
    assert isinstance(provider_from_settings(Settings()), LocalTestProvider)
