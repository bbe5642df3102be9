"""Compile the error code catalogue (src/vpndoctor/data/error_codes.yaml, what people edit) into
error_codes.json beside it, what `vpndoctor explain` and the others read (json loads in a millisecond;
PyYAML's import alone costs explain ~25 ms of start-up). Run after editing the YAML;
tests/windows/test_errorcodes.py fails until you do."""

from __future__ import annotations

import json
import sys

from vpndoctor.windows.errorcodes import COMPILED, SOURCE, index_catalogue, read_source


def compiled_text() -> str:
    doc = read_source(SOURCE.read_text(encoding="utf-8"))
    index_catalogue(doc)  # refuse to compile a catalogue that does not validate
    return json.dumps(doc, indent=1, ensure_ascii=False, sort_keys=False) + "\n"


def main() -> int:
    COMPILED.write_text(compiled_text(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
