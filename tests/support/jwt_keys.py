"""Test keys, a JWKS served on 127.0.0.1, and a signer of CDS Hooks client JWTs.

`JwksServer` is a tiny `http.server` bound to 127.0.0.1 on a free port, in a daemon thread: it stops
at the end of its `with` block (or with the test process). Its documents can change while it runs
(key rotation) and it counts the requests per path (to prove what was, and was not, fetched).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    private: PrivateKey

    def public_jwk(self) -> dict[str, Any]:
        algorithm = ECAlgorithm if isinstance(self.private, ec.EllipticCurvePrivateKey) else RSAAlgorithm
        jwk: dict[str, Any] = json.loads(algorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def new_key(alg: str, kid: str | None = None) -> SigningKey:
    kid = kid or f"{alg.lower()}-{uuid.uuid4().hex[:8]}"
    private: PrivateKey
    if alg == "ES384":
        private = ec.generate_private_key(ec.SECP384R1())
    elif alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    elif alg in ("RS384", "RS256"):
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        raise ValueError(alg)
    return SigningKey(kid, alg, private)


def jwks(*keys: SigningKey) -> dict[str, Any]:
    return {"keys": [k.public_jwk() for k in keys]}


def sign(
    key: SigningKey,
    *,
    iss: str,
    aud: str | list[str],
    jku: str | None = None,
    lifetime_seconds: int = 300,
    issued_offset_seconds: int = 0,
    jti: str | None = None,
    drop: tuple[str, ...] = (),
    extra: dict[str, Any] | None = None,
    header: dict[str, Any] | None = None,
) -> str:
    """A client JWT as the sandbox and Inferno make them: {alg, typ, kid, jku}; {iss, aud, exp, iat, jti}."""
    now = int(time.time()) + issued_offset_seconds
    claims: dict[str, Any] = {
        "iss": iss,
        "aud": aud,
        "iat": now,
        "exp": now + lifetime_seconds,
        "jti": jti or uuid.uuid4().hex,
        **(extra or {}),
    }
    for name in drop:
        claims.pop(name, None)
    headers: dict[str, Any] = {
        "typ": "JWT",
        "kid": key.kid,
        **({"jku": jku} if jku else {}),
        **(header or {}),
    }
    # a header value of None drops that header (to make a JWT without `kid`, say)
    kept = {name: value for name, value in headers.items() if value is not None}
    return jwt.encode(claims, key.private, algorithm=key.alg, headers=kept)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unsigned(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None = None) -> str:
    """A token built by hand: `alg: none` (no signature) or HS256 with `secret` (e.g. a public key)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    if secret is None:
        return signing_input + "."
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def tamper(token: str, **changes: Any) -> str:
    """The token with its payload changed and the original signature kept."""
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    return f"{head}.{_b64(json.dumps(claims).encode())}.{signature}"


class JwksServer:
    """Serves JWK Sets on http://127.0.0.1:<port>/<name>.json for the duration of a `with` block."""

    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self.requests: Counter[str] = Counter()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def url(self, name: str) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/{name}.json"

    def publish(self, name: str, document: dict[str, Any]) -> str:
        self.documents[f"/{name}.json"] = document
        return self.url(name)

    def __enter__(self) -> Self:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests[self.path] += 1
                document = owner.documents.get(self.path)
                body = json.dumps(document).encode() if document is not None else b"{}"
                self.send_response(200 if document is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        assert self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
