"""The one HTTP client of every outgoing request (FHIR fetches, JWKS): pooled `requests` sessions that
take only a `Target` the URL policy made (`url_policy.py`).

What the session itself guarantees, whatever the caller:
- redirects are never followed (a 3xx is an answer, and the caller refuses it);
- nothing from the environment: no proxy variables, no `.netrc` credentials (`trust_env = False`), no
  cookies kept between calls;
- the address actually connected to is checked again (link-local, metadata, …), so a DNS name that
  resolves to one is refused at connect time, not only a literal in the URL;
- the body is read with a size cap and one deadline for the whole read, a chunk at a time, so a server
  trickling one byte a second cannot hold a thread past the deadline.
"""

from __future__ import annotations

import http.cookiejar
import ipaddress
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from cds_service.web.url_policy import Target, guarded_address


class OutgoingFailed(Exception):
    """No usable answer; the message is safe to show (no URL query, no token)."""


class TooLarge(OutgoingFailed):
    pass


class TooSlow(OutgoingFailed):
    pass


def _check_peer(connection: HTTPConnection, sock: socket.socket) -> socket.socket:
    peer = sock.getpeername()[0]
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return sock
    if guarded_address(address):
        sock.close()
        raise NewConnectionError(connection, "refused: the host resolves to a link-local or metadata address")
    return sock


class _GuardedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _check_peer(self, super()._new_conn())


class _GuardedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _check_peer(self, super()._new_conn())


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str


class OutgoingClient:
    """One per app (thread-safe: urllib3's pools are, and the session keeps no per-call state)."""

    def __init__(self, pool_size: int = 8, user_agent: str = "vertebral-cds") -> None:
        session = requests.Session()
        session.trust_env = False
        session.max_redirects = 0
        session.cookies.set_policy(_NoCookies())
        adapter = _GuardedAdapter(pool_connections=8, pool_maxsize=pool_size, max_retries=0, pool_block=False)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers.clear()
        session.headers["User-Agent"] = user_agent
        self._session = session
        self.requests = 0  # requests sent (observability and tests)

    def close(self) -> None:
        self._session.close()

    def get(
        self,
        target: Target,
        *,
        headers: Mapping[str, str],
        timeout: float,
        deadline: float,
        max_bytes: int,
    ) -> Answer:
        """GET `target`; a non-2xx status is an answer, not an error (the caller decides)."""
        if not isinstance(target, Target):  # the type is the proof the policy was applied
            raise TypeError("OutgoingClient.get takes a url_policy.Target")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TooSlow("deadline passed")
        timeout = min(timeout, remaining)
        self.requests += 1
        try:
            response = self._session.get(
                target.url,
                headers=dict(headers),
                timeout=(min(timeout, 3.0), timeout),
                allow_redirects=False,
                stream=True,
            )
        except requests.Timeout as error:
            raise TooSlow("did not answer in time") from error
        except requests.ConnectionError as error:
            raise OutgoingFailed(
                "unreachable (connection refused, no route, or a refused address)"
            ) from error
        except (requests.RequestException, OSError, ValueError) as error:
            raise OutgoingFailed(f"request failed ({type(error).__name__})") from error
        complete = False
        try:
            body = b"" if not 200 <= response.status_code < 300 else self._read(response, deadline, max_bytes)
            complete = 200 <= response.status_code < 300
        except requests.RequestException as error:
            raise OutgoingFailed(f"connection failed while reading ({type(error).__name__})") from error
        except OSError as error:
            raise OutgoingFailed(f"connection failed while reading ({type(error).__name__})") from error
        except Exception as error:  # urllib3 read errors (ProtocolError, DecodeError, …)
            if isinstance(error, OutgoingFailed):
                raise
            raise OutgoingFailed(f"connection failed while reading ({type(error).__name__})") from error
        finally:
            if complete:
                response.raw.release_conn()  # read to the end: the connection goes back to the pool
            else:
                response.close()  # unread data on it: never reused
        return Answer(response.status_code, body, response.headers.get("Content-Type", ""))

    @staticmethod
    def _read(response: requests.Response, deadline: float, max_bytes: int) -> bytes:
        raw = response.raw
        raw.decode_content = True
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk: bytes = raw.read1(65536)
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise TooLarge(f"response larger than {max_bytes} bytes")
            if time.monotonic() > deadline:
                raise TooSlow("deadline passed while reading")
            chunks.append(chunk)
        return b"".join(chunks)
