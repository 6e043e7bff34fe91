"""Talking to cloture's coordinator: JSON over HTTP/1.1 on loopback, one kept-alive connection per thread.

The coordinator's URL comes from ``CLOTURE_COORDINATOR`` (set by ``cloture explore`` for the test command and
the runner). Only loopback URLs are used, as the services do. Proxies named in the environment
(``http_proxy``) are never used: the coordinator is on this machine.
"""
from __future__ import annotations

import http.client
import json
import os
import threading
from typing import Any, Optional, Tuple
from urllib.parse import quote

COORDINATOR_ENV = "CLOTURE_COORDINATOR"
EXECUTION_ENV = "CLOTURE_EXECUTION"

_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


class CoordinatorError(RuntimeError):
    """The coordinator could not be reached, or refused a request (its ``error`` message is in the text)."""


def coordinator_url() -> Optional[str]:
    """``http://127.0.0.1:PORT`` from the environment, or ``None`` outside an exploration."""
    url = os.environ.get(COORDINATOR_ENV, "").strip().rstrip("/")
    return url or None


def execution_id() -> Optional[str]:
    """The id of the execution this test runs in, or ``None`` outside an exploration."""
    execution = os.environ.get(EXECUTION_ENV, "").strip()
    return execution or None


def _host_and_port(url: str) -> Tuple[str, int]:
    if not url.startswith("http://"):
        raise CoordinatorError(f"{COORDINATOR_ENV} must be http://127.0.0.1:PORT, not {url!r}")
    host, _, port = url[len("http://"):].rpartition(":")
    if host not in _LOOPBACK or not port.isdigit():
        raise CoordinatorError(f"{COORDINATOR_ENV} must be a loopback URL such as http://127.0.0.1:PORT, not {url!r}")
    return host.strip("[]"), int(port)


class Connection:
    """A kept-alive connection to the coordinator at ``url``; reconnects once when the kept one was closed."""

    def __init__(self, url: str, timeout: float = 10.0):
        self.url = url
        self.host, self.port = _host_and_port(url)
        self.timeout = timeout
        self._connection: Optional[http.client.HTTPConnection] = None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def request(self, method: str, path: str, body: Any = None, timeout: Optional[float] = None) -> Tuple[int, Any]:
        """Sends one request; returns the status and the JSON body (``None`` when empty)."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        for attempt in (1, 2):
            if self._connection is None:
                self._connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            if self._connection.sock is not None:
                self._connection.sock.settimeout(timeout or self.timeout)
            else:
                self._connection.timeout = timeout or self.timeout
            try:
                self._connection.request(method, path, body=data, headers=headers)
                response = self._connection.getresponse()
                raw = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as error:
                # A kept connection the coordinator closed (its idle timeout): once more on a new one.
                self.close()
                if attempt == 2:
                    raise CoordinatorError(f"the coordinator at {self.url} closed the connection: {error}") from error
                continue
            except OSError as error:
                self.close()
                raise CoordinatorError(f"the coordinator at {self.url} cannot be reached: {error}") from error
            if response.getheader("Connection", "").lower() == "close":
                self.close()
            return response.status, (json.loads(raw) if raw else None)
        raise AssertionError("unreachable")


_local = threading.local()


def connection() -> Optional[Connection]:
    """This thread's connection to the coordinator of the environment, or ``None`` outside an exploration."""
    url = coordinator_url()
    if url is None:
        return None
    kept = getattr(_local, "connection", None)
    if kept is None or kept.url != url:
        if kept is not None:
            kept.close()
        kept = Connection(url)
        _local.connection = kept
    return kept


def ask(method: str, path: str, body: Any = None) -> Tuple[int, Any]:
    """One request to the coordinator of the environment."""
    kept = connection()
    if kept is None:
        raise CoordinatorError(f"not in an exploration: {COORDINATOR_ENV} is not set")
    return kept.request(method, path, body)


def refusal(status: int, body: Any) -> str:
    """The coordinator's error message of a refused request."""
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return f"{status}: {body['error']}"
    return str(status)


def segment(text: str) -> str:
    """``text`` percent-encoded for a path segment or a query value."""
    return quote(text, safe="")
