"""Error codes given to `vpndoctor error` (windows/errorcodes.py `parse_code`: decimal, hex, bare hex, signed
HRESULT, names) and their lookup, forms and JSON, as the command prints them; `--nps` reason codes too."""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict

from vpndoctor.errors import UsageError
from vpndoctor.windows import errorcodes

OURS = (UsageError,)
MAX_LEN = 4096


def one_input(data: bytes) -> None:
    text = data.decode("utf-8", errors="surrogateescape")
    with contextlib.suppress(UsageError):  # `--nps CODE`: a decimal reason code, as the command reads it
        nps = errorcodes.parse_nps_code(text)
        assert 0 <= nps <= 0xFFFFFFFF, f"parse_nps_code({text!r}) = {nps}"
        errorcodes.lookup_nps(nps)
    try:
        value = errorcodes.parse_code(text)
    except UsageError:
        return
    assert 0 <= value <= 0xFFFFFFFF, f"parse_code({text!r}) = {value}"
    entry = errorcodes.lookup(value)
    forms = errorcodes.forms(value)
    forms.text()
    json.dumps({"forms": asdict(forms), "entry": asdict(entry) if entry else None})
    errorcodes.lookup_nps(value)
