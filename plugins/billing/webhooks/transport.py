"""The HTTP client deliveries go through: the SSRF guard at connect time, and a per-attempt deadline.

httpx opens its sockets through an httpcore network backend; ours resolves the host itself, checks
every address with `guard.check_addresses`, then connects to one of those checked addresses. The
URL keeps its hostname, so the `Host` header, TLS SNI and certificate verification are unchanged,
and a second DNS answer (rebinding) is never consulted. Environment proxies are ignored: a proxy
would make the connection, and the check, on our behalf.

The deadline bounds one whole attempt (connect, TLS, sending, the response head and the part of
its body we read), not each socket operation, so a receiver dripping bytes cannot hold a worker
longer than the timeout. Residual gap: name resolution itself (`getaddrinfo`) cannot be
interrupted and is bounded by the system resolver's own timeouts.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from ipaddress import ip_address
from typing import Any

import httpcore
import httpx

from billing.webhooks.guard import AllowList, IPAddress, check_addresses

_attempt = threading.local()


def webhook_client(*, timeout: float, max_connections: int, allow: AllowList | None = None) -> httpx.Client:
    """An httpx client that refuses non-public addresses (unless allowed) and never follows redirects."""
    transport = _GuardedTransport(allow or AllowList.from_env(), max_connections=max_connections)
    return httpx.Client(transport=transport, timeout=timeout, trust_env=False, follow_redirects=False)


@contextmanager
def attempt_deadline(seconds: float) -> Iterator[None]:
    """Bound every socket operation of this thread's requests by one deadline, `seconds` from now."""
    previous = getattr(_attempt, "deadline", None)
    _attempt.deadline = time.monotonic() + seconds
    try:
        yield
    finally:
        _attempt.deadline = previous


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, allow: AllowList, *, max_connections: int) -> None:
        ssl_context = httpx.create_ssl_context()  # NOTE: honours SSL_CERT_FILE / SSL_CERT_DIR
        super().__init__(verify=ssl_context, trust_env=False)
        # NOTE: httpx has no public way to pass a network backend, so the pool it built is
        # replaced by the same pool with ours. Pinned by the SSRF tests: if httpx changes
        # this, they fail rather than deliveries going out unchecked.
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            network_backend=_GuardedBackend(allow),
        )


class _GuardedBackend(httpcore.NetworkBackend):
    def __init__(self, allow: AllowList) -> None:
        self._allow = allow
        self._sockets = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = _resolve(host, port)
        check_addresses(host, addresses, self._allow)
        failure: Exception | None = None
        for address in addresses:
            try:
                stream = self._sockets.connect_tcp(
                    str(address),
                    port,
                    timeout=_remaining(timeout, httpcore.ConnectTimeout),
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as error:
                failure = error
                continue
            return _DeadlineStream(stream)
        raise failure or httpcore.ConnectError(f"{host} has no address")

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options=None):
        raise httpcore.ConnectError("webhooks are not delivered over unix sockets")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose reads and writes stop at the current attempt's deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _remaining(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _remaining(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname: str | None = None, timeout: float | None = None):
        tls = self._stream.start_tls(ssl_context, server_hostname, _remaining(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(tls)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


def _resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to, in the resolver's order, without duplicates."""
    try:
        found = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from None
    addresses: list[IPAddress] = []
    for *_, sockaddr in found:
        address = ip_address(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def _remaining(timeout: float | None, expired: type[Exception]) -> float | None:
    deadline = getattr(_attempt, "deadline", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("the attempt's deadline has passed")
    return left if timeout is None else min(timeout, left)
