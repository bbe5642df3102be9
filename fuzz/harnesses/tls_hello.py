"""TLS handshake message bodies (tls/hello.py, tls/tls13.py): ClientHello, ServerHello, Certificate,
CertificateRequest (each TLS version), Alert, and the TLS 1.3 Certificate and CertificateRequest. The first
byte picks the parser; the rest is the body."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from vpndoctor.tls.errors import TlsDecodeError
from vpndoctor.tls.hello import (
    Version,
    parse_alert,
    parse_certificate,
    parse_certificate_request,
    parse_client_hello,
    parse_server_hello,
)
from vpndoctor.tls.tls13 import parse_certificate13, parse_certificate_request13

OURS = (TlsDecodeError,)


def _server_hello(body: bytes) -> None:
    hello = parse_server_hello(body, 9)
    _ = hello.downgrade_sentinel, hello.extension(43), hello.is_hello_retry_request


def _alert(body: bytes) -> None:
    alert = parse_alert(body)
    _ = alert.description_name, alert.is_fatal


PARSERS: tuple[Callable[[bytes], object], ...] = (
    parse_client_hello,
    _server_hello,
    parse_certificate,
    lambda b: parse_certificate_request(b, Version.SSLv3),
    lambda b: parse_certificate_request(b, Version.TLS1_1),
    lambda b: parse_certificate_request(b, Version.TLS1_2),
    _alert,
    parse_certificate13,
    parse_certificate_request13,
)


def one_input(data: bytes) -> None:
    if not data:
        return
    with contextlib.suppress(TlsDecodeError):
        PARSERS[data[0] % len(PARSERS)](data[1:])
