"""The SSRF guard: non-public addresses are refused (and recorded) unless allowed, checked on the
resolved address, and the connection goes to the address that was checked."""

from __future__ import annotations

import socket
import ssl
import threading
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address

import pytest
from billing.webhooks import ALLOW_HOSTS_ENV, DispatchSummary, WebhookReceiver, dispatch_webhooks
from billing.webhooks.guard import AllowList, RefusedAddress, check_addresses, forbidden_kind
from conftest import reset_warehouse
from webhook_test_support import (  # noqa: F401 (allow_local_receivers: an autouse fixture)
    INVOICE_GENERATED,
    add_endpoint,
    allow_local_receivers,
    assert_retry_at,
    attempts,
    delivery,
    enqueue,
    new_secret,
)

ALLOW_HINT = "(set BILLING_WEBHOOK_ALLOW_HOSTS to allow it)"


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.8.9.10", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.0.0.1", "a private address"),
        ("172.16.5.4", "a private address"),
        ("192.168.1.1", "a private address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("100.100.100.200", "a cloud metadata address"),
        ("169.254.1.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("fd12:3456::1", "a unique-local address"),
        ("224.0.0.251", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("100.64.0.1", "a shared (carrier-grade NAT) address"),
        ("::ffff:10.0.0.1", "a private address"),
        ("::ffff:169.254.169.254", "a cloud metadata address"),
        ("64:ff9b::7f00:1", "a loopback address"),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_addresses_are_classified(address, kind):
    assert forbidden_kind(ip_address(address)) == kind


def test_allow_list_takes_hostnames_wildcards_addresses_and_cidrs():
    allow = AllowList.parse(" Hooks.Internal., *.corp.example ,10.0.0.0/8, 127.0.0.1,[::1],")

    check_addresses("hooks.internal", [ip_address("192.168.1.5")], allow)
    check_addresses("a.b.corp.example", [ip_address("172.16.0.1")], allow)
    check_addresses("anything.example", [ip_address("10.9.8.7"), ip_address("::1")], allow)
    with pytest.raises(RefusedAddress, match="resolves to 192.168.1.5, a private address"):
        check_addresses("other.example", [ip_address("10.0.0.1"), ip_address("192.168.1.5")], allow)
    with pytest.raises(RefusedAddress, match="allowing the hostname is not enough"):
        check_addresses("hooks.internal", [ip_address("169.254.169.254")], allow)
    check_addresses("metadata.example", [ip_address("169.254.169.254")], AllowList.parse("169.254.169.254"))


def test_loopback_is_refused_without_the_allow_list_and_delivered_once_allowed(warehouse, monkeypatch):
    reset_warehouse()
    monkeypatch.delenv(ALLOW_HOSTS_ENV)
    secret = new_secret()
    event_id = enqueue(INVOICE_GENERATED, "inv_1")
    now = _now()

    with WebhookReceiver(secret) as receiver:
        add_endpoint("ep_local", receiver.url, secret)
        refused = dispatch_webhooks(now=now)
        assert (receiver.accepted, receiver.rejected) == ([], 0)
        monkeypatch.setenv(ALLOW_HOSTS_ENV, "127.0.0.1")
        allowed = dispatch_webhooks(now=now + timedelta(seconds=6))

    assert refused == DispatchSummary(failed=1, pending=1)
    assert allowed == DispatchSummary(delivered=1)
    assert [event for event, _ in receiver.accepted] == [event_id]
    [first, second] = attempts(event_id, "ep_local")
    assert first[:3] == (1, now, None)
    assert first[4] == f"refused: 127.0.0.1 is a loopback address {ALLOW_HINT}"
    assert (second[0], second[2], second[4]) == (2, 204, None)


def test_a_refused_address_is_never_connected_to(warehouse, monkeypatch):
    reset_warehouse()
    monkeypatch.delenv(ALLOW_HOSTS_ENV)
    event_id = enqueue(INVOICE_GENERATED, "inv_1")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.3)
    add_endpoint("ep_local", f"http://127.0.0.1:{listener.getsockname()[1]}/hook", new_secret())
    now = _now()

    with listener:
        dispatch_webhooks(now=now)
        with pytest.raises(TimeoutError):
            listener.accept()  # NOTE: the kernel queues any TCP connection here, accepted or not
        monkeypatch.setenv(ALLOW_HOSTS_ENV, "127.0.0.0/8")
        dispatch_webhooks(now=now + timedelta(seconds=6), timeout=0.3)
        connection, _ = listener.accept()
        connection.close()

    errors = [error for _, _, _, _, error in attempts(event_id, "ep_local")]
    assert errors == [f"refused: 127.0.0.1 is a loopback address {ALLOW_HINT}", "timed out after 0.3s"]


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://10.0.0.1/hook", f"refused: 10.0.0.1 is a private address {ALLOW_HINT}"),
        (
            "http://169.254.169.254/latest/meta-data/",
            f"refused: 169.254.169.254 is a cloud metadata address {ALLOW_HINT}",
        ),
        ("http://[fd00:ec2::254]/", f"refused: fd00:ec2::254 is a cloud metadata address {ALLOW_HINT}"),
        ("https://100.100.100.200/", f"refused: 100.100.100.200 is a cloud metadata address {ALLOW_HINT}"),
        ("http://0.0.0.0:8080/", f"refused: 0.0.0.0 is an unspecified address {ALLOW_HINT}"),
        ("http://[::ffff:192.168.0.1]/", f"refused: ::ffff:192.168.0.1 is a private address {ALLOW_HINT}"),
    ],
)
def test_private_and_metadata_urls_are_refused_and_retried(warehouse, url, error):
    reset_warehouse()
    event_id = enqueue(INVOICE_GENERATED, "inv_1")
    add_endpoint("ep_internal", url, new_secret())
    now = _now()

    summary = dispatch_webhooks(now=now)

    assert summary == DispatchSummary(failed=1, pending=1)
    [(_, _, status, latency_ms, recorded)] = attempts(event_id, "ep_internal")
    assert (status, recorded) == (None, error)
    assert latency_ms < 1000
    status, attempt_count, next_attempt_at, _, last_error = delivery(event_id, "ep_internal")
    assert (status, attempt_count, last_error) == ("pending", 1, error)
    assert_retry_at(next_attempt_at, now, timedelta(seconds=5))


def test_each_delivery_to_a_refused_endpoint_is_refused_in_the_same_run(warehouse):
    reset_warehouse()
    event_ids = [enqueue(INVOICE_GENERATED, f"inv_{n}") for n in range(3)]
    add_endpoint("ep_internal", "http://10.0.0.1/hook", new_secret())

    summary = dispatch_webhooks(timeout=2)

    assert summary == DispatchSummary(failed=3, pending=3)
    for event_id in event_ids:
        [(_, _, _, _, error)] = attempts(event_id, "ep_internal")
        assert error.startswith("refused: 10.0.0.1 is a private address")


def test_a_hostname_is_checked_on_what_it_resolves_to(warehouse, monkeypatch):
    reset_warehouse()
    monkeypatch.delenv(ALLOW_HOSTS_ENV)
    event_id = enqueue(INVOICE_GENERATED, "inv_1")
    add_endpoint("ep_localhost", "http://localhost:9/hook", new_secret())

    dispatch_webhooks()

    [(_, _, _, _, error)] = attempts(event_id, "ep_localhost")
    assert error.startswith("refused: localhost resolves to ")
    assert error.endswith(f", a loopback address {ALLOW_HINT}")


def test_the_connection_goes_to_the_checked_address_not_a_second_lookup(warehouse, monkeypatch, httpserver):
    """DNS rebinding: the first answer is checked and used; a later, different one never is.
    The request still names the host (Host header), as TLS would (SNI)."""
    reset_warehouse()
    monkeypatch.setenv(ALLOW_HOSTS_ENV, "127.0.0.1")
    real_getaddrinfo = socket.getaddrinfo
    lookups = []

    def rebinding_dns(host, port, *args, **kwargs):
        if host != "hooks.rebind.test":
            return real_getaddrinfo(host, port, *args, **kwargs)
        lookups.append(host)
        answer = "127.0.0.1" if len(lookups) == 1 else "169.254.169.254"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_dns)
    event_id = enqueue(INVOICE_GENERATED, "inv_1")
    add_endpoint("ep_named", f"http://hooks.rebind.test:{httpserver.port}/hook", new_secret())
    httpserver.expect_request("/hook", method="POST").respond_with_data("", status=204)

    summary = dispatch_webhooks(timeout=2)

    assert summary == DispatchSummary(delivered=1)
    assert lookups == ["hooks.rebind.test"]
    [(request, _)] = httpserver.log
    assert request.headers["host"] == f"hooks.rebind.test:{httpserver.port}"
    assert request.headers["webhook-id"] == event_id


def test_https_to_a_pinned_address_still_verifies_the_hostnames_certificate(warehouse, monkeypatch, tmp_path):
    """Connecting to the checked IP keeps TLS honest: SNI and the certificate check use the name."""
    reset_warehouse()
    cert_file = _self_signed_certificate(tmp_path, "hooks.tls.test")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    monkeypatch.setenv(ALLOW_HOSTS_ENV, "127.0.0.1")
    _resolve_names_to_loopback(monkeypatch, {"hooks.tls.test", "other.tls.test"})
    served = []

    with _https_server(cert_file, served) as port:
        add_endpoint("ep_tls", f"https://hooks.tls.test:{port}/hook", new_secret())
        add_endpoint("ep_wrong_name", f"https://other.tls.test:{port}/hook", new_secret())
        event_id = enqueue(INVOICE_GENERATED, "inv_1")
        summary = dispatch_webhooks(timeout=5)

    assert summary == DispatchSummary(delivered=1, failed=1, pending=1)
    assert served == [("hooks.tls.test", f"hooks.tls.test:{port}")]
    [(_, _, status, _, error)] = attempts(event_id, "ep_wrong_name")
    assert status is None and "CERTIFICATE_VERIFY_FAILED" in error


def _resolve_names_to_loopback(monkeypatch, names: set[str]) -> None:
    real_getaddrinfo = socket.getaddrinfo

    def fake_dns(host, port, *args, **kwargs):
        if host in names:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_dns)


def _self_signed_certificate(folder, hostname: str):
    """A PEM file holding a self-signed certificate for `hostname` and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = folder / "hooks.pem"
    path.write_bytes(
        certificate.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


@contextmanager
def _https_server(cert_file, served: list):
    """An HTTPS server on 127.0.0.1 answering 204 and noting (SNI name, Host header) per request."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file)
    server_names = {}
    context.sni_callback = lambda connection, name, _context: server_names.__setitem__(id(connection), name)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length", 0)))
            served.append((server_names.get(id(self.connection)), self.headers["host"]))
            self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
