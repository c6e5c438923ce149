"""Who may use the admin API and page: bearer tokens with roles, signed session cookies, CSRF tokens,
and a limit on failed logins.

- `VCDS_ADMIN_TOKEN` is the editor's token, `VCDS_ADMIN_VIEWER_TOKEN` the viewer's. Only their SHA-256
  digests are kept here and a presented token is compared digest to digest in constant time.
- The page's login form trades a token for a session cookie, signed by `itsdangerous` (HMAC-SHA256)
  with a key every worker shares (`VCDS_ADMIN_SESSION_SECRET`, or one derived from the tokens, so
  changing a token ends every session). The payload: name, role, a random session id, the expiry and
  the session format version `v`. HttpOnly, SameSite=Strict, Secure over https, path /admin.
- Every form carries a CSRF token: the signature of the session's random id.
- Failed logins are limited per client address (`rate_limit.RateLimiter`, in process: each worker
  counts its own).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from itsdangerous import BadData, Signer, URLSafeSerializer
from pydantic import SecretStr

from cds_service.admin.audit import Actor
from cds_service.settings import Settings

Role = Literal["viewer", "editor"]
_RANK: dict[str, int] = {"viewer": 1, "editor": 2}
SESSION_COOKIE = "vcds_admin"
SESSION_VERSION = 1
"""The shape of the session payload; a cookie of another version is not read."""
MAX_NAME_LENGTH = 64


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def clean_name(name: str | None, fallback: str) -> str:
    """A display name for the audit log: printable, trimmed, bounded."""
    cleaned = " ".join("".join(ch for ch in (name or "") if ch.isprintable()).split())[:MAX_NAME_LENGTH]
    return cleaned or fallback


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    via: Literal["bearer", "session"]
    session_id: str | None = None
    expires_at: float | None = None

    def may(self, role: Role) -> bool:
        return _RANK[self.role] >= _RANK[role]

    def actor(self, name: str | None = None) -> Actor:
        return Actor(clean_name(name, self.name), self.role)


class AdminAuth:
    def __init__(
        self,
        editor_token: SecretStr | None,
        viewer_token: SecretStr | None = None,
        session_secret: SecretStr | None = None,
        session_minutes: int = 480,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tokens: list[tuple[bytes, Role]] = []
        if editor_token is not None:
            self._tokens.append((_digest(editor_token.get_secret_value()), "editor"))
        if viewer_token is not None:
            self._tokens.append((_digest(viewer_token.get_secret_value()), "viewer"))
        if session_secret is not None:
            material = session_secret.get_secret_value().encode("utf-8")
        else:
            material = b"".join(digest for digest, _ in self._tokens)
        key = hmac.new(material, b"vertebral-cds admin session v1", hashlib.sha256).digest()
        sha256 = {"digest_method": hashlib.sha256}
        self._sessions = URLSafeSerializer(key, salt="admin-session", signer_kwargs=sha256)
        self._forms = Signer(key, salt="admin-form", digest_method=hashlib.sha256)
        self.session_seconds = session_minutes * 60
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings) -> AdminAuth:
        return cls(
            settings.admin_token,
            settings.admin_viewer_token,
            settings.admin_session_secret,
            settings.admin_session_minutes,
        )

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def role_for(self, token: str) -> Role | None:
        presented = _digest(token)
        found: Role | None = None
        for digest, role in self._tokens:  # compare with every token, so timing says nothing
            if hmac.compare_digest(digest, presented):
                found = role
        return found

    # ------------------------------------------------------------------ sessions

    def _sign(self, value: str) -> str:
        return self._forms.get_signature(value).decode("ascii")

    def new_session(self, name: str, role: Role) -> tuple[str, Principal]:
        """The cookie value for a fresh session, and who it stands for."""
        session_id = secrets.token_urlsafe(18)
        expires = int(self._clock()) + self.session_seconds
        cookie = self._sessions.dumps(
            {"v": SESSION_VERSION, "n": name, "r": role, "s": session_id, "e": expires}
        )
        principal = Principal(name=name, role=role, via="session", session_id=session_id, expires_at=expires)
        return cookie, principal

    def read_session(self, cookie: str | None) -> Principal | None:
        if not cookie or not self.enabled:
            return None
        try:
            data = self._sessions.loads(cookie)
        except BadData:  # a bad signature or a payload that is no JSON
            return None
        if not isinstance(data, dict) or data.get("v") != SESSION_VERSION or data.get("r") not in _RANK:
            return None
        expires = data.get("e")
        if not isinstance(expires, int) or expires <= self._clock():
            return None
        return Principal(
            name=clean_name(str(data.get("n")), "admin"),
            role=data["r"],
            via="session",
            session_id=str(data.get("s")),
            expires_at=expires,
        )

    def login_token(self, nonce: str) -> str:
        """The login form's CSRF token, bound to a short-lived pre-login cookie holding `nonce`."""
        return self._sign(f"login:{nonce}")

    def login_token_ok(self, nonce: str | None, token: str | None) -> bool:
        return bool(nonce) and bool(token) and hmac.compare_digest(str(token), self.login_token(str(nonce)))

    def csrf_token(self, principal: Principal) -> str:
        return self._sign(f"csrf:{principal.session_id}")

    def csrf_ok(self, principal: Principal, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf_token(principal))
