"""The HTTP plumbing of the Doccano client: token authentication, retries of idempotent
requests, pagination, and errors that say what went wrong."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import TracebackType
from typing import Any, Self

import httpx

from homs_ner.doccano.types import (
    DoccanoAuthError,
    DoccanoConnectionError,
    DoccanoError,
    DoccanoNotFoundError,
    DoccanoTimeoutError,
)

SERVE_HINT = "is the server running? start it with `homs-ner doccano serve`"
IDEMPOTENT_METHODS = frozenset({"GET", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({502, 503, 504})


class RequestCounter:
    """How many HTTP requests a session has sent, by method; every attempt counts, retries too.

    Round trips are what bulk reads save, so tests and the pre-annotation benchmark count
    them here, where every request passes. Thread-safe: pre-annotation writes from a pool.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, method: str) -> None:
        with self._lock:
            self._counts[method] += 1

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def by_method(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


class DoccanoSession:
    """Token-authenticated access to one Doccano server, over one keep-alive connection pool.

    ``retries`` is the number of *extra* attempts after a connection failure or a
    502/503/504, with exponential backoff starting at ``backoff`` seconds; only GET, PUT
    and DELETE are retried, because a repeated POST could create a duplicate.
    ``page_size`` is the ``limit`` asked of paginated lists: the server's default is 5 and
    it sets no maximum, so large pages make reading a whole project a few requests.
    ``requests`` counts what was sent. One session may be shared by threads (httpx's
    client is thread-safe).
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        *,
        backoff: float = 0.5,
        page_size: int = 1000,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self.page_size = page_size
        self.requests = RequestCounter()
        self._http = httpx.Client(
            headers={"Accept": "application/json"},
            timeout=timeout,
            transport=transport,
            cookies=_refuse_all_cookies(),
        )
        self.token: str | None = None
        if token:
            self._use_token(token)

    @classmethod
    def login(cls, base_url: str, username: str, password: str, **kwargs: Any) -> Self:
        """Log in with a username and password and return a client carrying the token."""
        client = cls(base_url, **kwargs)
        try:
            body = client._json("POST", "/v1/auth/login/", json={"username": username, "password": password})
        except BaseException:
            client.close()
            raise
        client._use_token(body["key"])
        return client

    def _use_token(self, token: str) -> None:
        self.token = token
        self._http.headers["Authorization"] = f"Token {token}"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- HTTP plumbing --------------------------------------------------------------

    def _url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        return response.json() if response.content else None

    def _iter(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Items of a list endpoint, following ``next`` on paginated ones.

        Some endpoints (users, roles, members, label types, annotations) are not
        paginated and answer with a bare list.
        """
        url: str | None = path
        page_params: dict[str, Any] | None = {"limit": self.page_size, **(params or {})}
        while url:
            body = self._request("GET", url, params=page_params).json()
            if isinstance(body, list):
                yield from body
                return
            yield from body["results"]
            url, page_params = body.get("next"), None  # `next` already carries limit/offset

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = self._url(path)
        attempts = 1 + (self.retries if method in IDEMPOTENT_METHODS else 0)
        for attempt in range(attempts):
            is_last = attempt == attempts - 1
            self.requests.add(method)
            try:
                response = self._http.request(method, url, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if is_last:
                    raise self._unreachable(method, url, exc) from exc
            except httpx.TimeoutException as exc:
                raise DoccanoTimeoutError(
                    f"{method} {url}: no answer within the client timeout ({exc})", method=method, url=url
                ) from exc
            except httpx.TransportError as exc:
                raise self._unreachable(method, url, exc) from exc
            else:
                if response.status_code not in RETRY_STATUSES or is_last:
                    return _checked(response, method, url)
            time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _unreachable(self, method: str, url: str, exc: httpx.TransportError) -> DoccanoConnectionError:
        return DoccanoConnectionError(
            f"cannot reach Doccano at {self.base_url} ({type(exc).__name__}: {exc}): {SERVE_HINT}",
            method=method,
            url=url,
            detail=str(exc),
        )


def _refuse_all_cookies() -> CookieJar:
    """A jar that stores nothing.

    Login also opens a Django session; if its cookie were sent back, DRF would use session
    authentication, which demands a CSRF token on every POST. The token header suffices.
    """
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def _checked(response: httpx.Response, method: str, url: str) -> httpx.Response:
    """Return a successful response, or raise the error class that fits its status."""
    if response.is_success:
        return response
    status = response.status_code
    detail = _detail(response)
    message = f"{method} {url} failed with HTTP {status}: {detail}"
    error: type[DoccanoError] = DoccanoError
    if status in (401, 403) or (status == 400 and url.endswith("/v1/auth/login/")):
        error = DoccanoAuthError
        message += " (wrong username/password, not logged in, or not allowed for this user)"
    elif status == 404:
        error = DoccanoNotFoundError
    raise error(message, status=status, method=method, url=url, detail=detail)


def _detail(response: httpx.Response) -> Any:
    """The server's explanation: DRF's ``detail`` if present, else the JSON or text body."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(body, dict) and set(body) == {"detail"}:
        return body["detail"]
    return body
