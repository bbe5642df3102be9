"""One module per parser. Each defines `one_input(data: bytes) -> None`, which feeds the bytes to its parser
and swallows the parser's own decode errors (`OURS`): anything else escaping it is a bug, and so is an
assertion failing (the harnesses check a few properties: encode/decode round trips, C against Python,
chunked against whole). `MAX_LEN` (optional) is the longest input worth trying."""

from __future__ import annotations

import importlib
from types import ModuleType

HARNESSES = (
    "ike_message",
    "ike_payloads",
    "ike_sk",
    "ike_fragments",
    "ike_decryptor",
    "esp_packets",
    "key_files",
    "tls_records",
    "tls_flight",
    "tls_hello",
    "tls13_flight",
    "tls_dn",
    "sstp_packets",
    "sstp_http",
    "capture_reader",
    "capture_c_walk",
    "capture_analysis",
    "events_xml",
    "events_csv",
    "events_evtx",
    "events_evtx_json",
    "profile_xml",
    "config_yaml",
    "ipconfig",
    "addresses",
    "error_codes",
    "eap_peap",
)


def load(name: str) -> ModuleType:
    if name not in HARNESSES:
        raise KeyError(f"no harness {name!r} (one of {', '.join(HARNESSES)})")
    return importlib.import_module(f"fuzz.harnesses.{name}")
