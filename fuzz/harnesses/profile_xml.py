"""ProfileXML (windows/profile.py `parse_profile_xml`): bare, escaped or CDATA inside SyncML, any encoding;
the IKE proposal its CryptographySuite asks for, as `diagnose --profile` uses it."""

from __future__ import annotations

import contextlib

from vpndoctor.errors import UsageError
from vpndoctor.windows.profile import parse_profile_xml

OURS = (UsageError,)
MAX_LEN = 16384


def one_input(data: bytes) -> None:
    try:
        profile = parse_profile_xml(data, source="fuzz")
    except UsageError:
        return
    suite = profile.cryptography_suite
    if suite is not None:
        with contextlib.suppress(UsageError):
            suite.ike_proposal()
