"""A small, real webhook receiver for the demo and the tests.

It listens on 127.0.0.1 on a free port (or the one given), checks every request with the
`standardwebhooks` library exactly as a customer's receiver would, answers 204 when the signature
holds and 401 when it does not, and keeps what it accepted. With one secret every path is one
endpoint; with a dict of name → secret each name is its own endpoint at `url_for(name)`.
"""

from __future__ import annotations

import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

ANY_PATH = ""
# NOTE: `shutdown()` waits up to one poll interval; the default 0.5 s slows every test.
SHUTDOWN_POLL_SECONDS = 0.05


class WebhookReceiver:
    """Context manager running a verifying webhook endpoint in a background thread.

    `accepted` holds (webhook-id, payload) in arrival order; `accepted_by_endpoint` the same per
    endpoint name; `rejected` counts requests that failed verification.
    """

    def __init__(self, secrets: dict[str, str] | str, *, port: int = 0) -> None:
        self._webhooks = {ANY_PATH: Webhook(secrets)} if isinstance(secrets, str) else {
            name: Webhook(secret) for name, secret in secrets.items()
        }
        self._port = port
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.accepted: list[tuple[str, dict[str, Any]]] = []
        self.accepted_by_endpoint: dict[str, list[tuple[str, dict[str, Any]]]] = {name: [] for name in self._webhooks}
        self.rejected = 0

    @property
    def url(self) -> str:
        """The receiver's base URL (with one secret, the endpoint's URL)."""
        if self._server is None:
            raise RuntimeError("the receiver is not running; use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    def url_for(self, name: str) -> str:
        """The URL of the endpoint `name` (a key of the secrets dict)."""
        if name not in self._webhooks:
            raise KeyError(f"no endpoint named {name!r}")
        return self.url + name

    def __enter__(self) -> WebhookReceiver:
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
            name="webhook-receiver",
            daemon=True,
        )
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def _receive(self, path: str, body: bytes, headers: dict[str, str]) -> HTTPStatus:
        name = ANY_PATH if ANY_PATH in self._webhooks else path.strip("/").split("?")[0]
        webhook = self._webhooks.get(name)
        if webhook is None:
            return HTTPStatus.NOT_FOUND
        try:
            payload = webhook.verify(body, headers)
        except (WebhookVerificationError, ValueError):
            with self._lock:
                self.rejected += 1
            return HTTPStatus.UNAUTHORIZED
        entry = (headers["webhook-id"], payload)
        with self._lock:
            self.accepted.append(entry)
            self.accepted_by_endpoint[name].append(entry)
        return HTTPStatus.NO_CONTENT


def _handler_for(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # NOTE: keep-alive, as real receivers do: the dispatcher reuses one connection per endpoint.
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            headers = {key.lower(): value for key, value in self.headers.items()}
            status = receiver._receive(self.path, body, headers)
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # NOTE: the demo prints its own output; access logs would interleave with it.

    return Handler
