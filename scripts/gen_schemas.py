"""Regenerate the JSON Schemas in schema/ from the report shapes (run after changing one): pydantic models,
and the stdlib dataclasses that the start-up-sensitive commands use (findings, the capture report), which
pydantic describes through a TypeAdapter."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from vpndoctor.capture.model import CaptureReport
from vpndoctor.checks.cert import CertReport
from vpndoctor.checks.connect import ConnectReport
from vpndoctor.checks.model import DiagnoseReport
from vpndoctor.checks.sstp import IphttpsReport, SstpReport
from vpndoctor.checks.tls import TlsReport
from vpndoctor.configgen.model import Deployment
from vpndoctor.observations.ike import IkeObservation
from vpndoctor.observations.scan import ScanRecord
from vpndoctor.windows.addresses import AddressReport
from vpndoctor.windows.events import EventsReport
from vpndoctor.windows.ipconfig import IsatapReport

SCHEMAS: dict[str, type[Any]] = {
    "ike.json": IkeObservation,
    "connect.json": ConnectReport,
    "diagnose.json": DiagnoseReport,
    "events.json": EventsReport,
    "address.json": AddressReport,
    "isatap.json": IsatapReport,
    "capture.json": CaptureReport,
    "tls.json": TlsReport,
    "sstp.json": SstpReport,
    "iphttps.json": IphttpsReport,
    "cert.json": CertReport,
    "config-input.json": Deployment,
    "scan.json": ScanRecord,
}


def render(model: type[Any]) -> str:
    schema = TypeAdapter(model).json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main() -> int:
    root = Path(__file__).resolve().parents[1] / "schema"
    root.mkdir(exist_ok=True)
    for name, model in SCHEMAS.items():
        (root / name).write_text(render(model))
    return 0


if __name__ == "__main__":
    sys.exit(main())
