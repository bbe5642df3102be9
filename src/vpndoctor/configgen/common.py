"""Small helpers every target shares: the header each output opens with, unit conversions, paths."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import PurePosixPath

from vpndoctor import __version__
from vpndoctor.configgen.model import Certificate, Deployment
from vpndoctor.configgen.recipes import RECIPES

# Ciphers the IP-HTTPS recipes use, OpenSSL names. Windows 8+ IP-HTTPS clients offer NULL suites; Windows 7
# does not, so one ECDHE suite stays on the front end while Windows 7 clients remain.
NULL_SUITES_OPENSSL = "NULL-SHA256:NULL-SHA"
WIN7_SUITE_OPENSSL = "ECDHE-RSA-AES128-SHA"


def header(target: str, d: Deployment, recipes: Sequence[str], comment: str = "#") -> str:
    lines = [
        f"vpndoctor config {target} for {d.name} (vpndoctor {__version__})",
        "recipes: " + ", ".join(recipes),
    ]
    lines += [f"  {r}: {RECIPES[r].title}" for r in recipes]
    return "\n".join(f"{comment} {line}" for line in lines) + "\n"


def minutes(seconds: int, minimum: int = 2, maximum: int = 1440) -> int:
    """Seconds as whole minutes (rounded up) within an appliance's accepted range."""
    return max(minimum, min(maximum, math.ceil(seconds / 60)))


def cert_file(c: Certificate, suffix: str = ".pem") -> str:
    """The file name of a certificate on an appliance: the basename of cert_file, or NAME.pem."""
    return PurePosixPath(c.cert_file).name if c.cert_file else f"{c.name}{suffix}"


def key_file(c: Certificate, suffix: str = ".key") -> str:
    return PurePosixPath(c.key_file).name if c.key_file else f"{c.name}{suffix}"


def front_ciphers_openssl(d: Deployment) -> str:
    suites = NULL_SUITES_OPENSSL + (f":{WIN7_SUITE_OPENSSL}" if d.clients.windows7 else "")
    return suites + ":@SECLEVEL=0"


def back_ciphers_openssl() -> str:
    return NULL_SUITES_OPENSSL + ":@SECLEVEL=0"
