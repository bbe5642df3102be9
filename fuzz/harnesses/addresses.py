"""Addresses given to `vpndoctor address` and `vpndoctor isatap prefix` (windows/addresses.py
`decode_address`, `isatap_prefix`) as a command-line argument arrives (bytes that are not UTF-8 as surrogate
escapes), through the JSON reports."""

from __future__ import annotations

import contextlib

from vpndoctor.errors import UsageError
from vpndoctor.windows.addresses import address_report, decode_address, isatap_prefix

OURS = (UsageError,)
MAX_LEN = 4096


def one_input(data: bytes) -> None:
    text = data.decode("utf-8", errors="surrogateescape")
    with contextlib.suppress(UsageError):
        address_report(decode_address(text)).model_dump_json()
    try:
        prefix = isatap_prefix(text)
    except UsageError:
        return
    prefix.prefixes(False)
    prefix.prefixes(True)
