"""The TLS codec's `wire.Reader`: it raises `TlsDecodeError`."""

from __future__ import annotations

from vpndoctor.tls.errors import TlsDecodeError
from vpndoctor.wire import Reader as _WireReader


class Reader(_WireReader):
    __slots__ = ()
    error = TlsDecodeError
