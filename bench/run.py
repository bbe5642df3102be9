"""`make bench`: run every benchmark in bench/ and fail if any fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHES = ("startup.py", "wan.py", "ike.py", "diagnose.py", "tls.py", "capture.py", "tunnel.py", "scan.py")


def main() -> int:
    here = Path(__file__).resolve().parent
    worst = 0
    for name in BENCHES:
        print(f"== bench/{name}", flush=True)
        code = subprocess.call([sys.executable, str(here / name)], timeout=900)
        worst = max(worst, code)
    return worst


if __name__ == "__main__":
    sys.exit(main())
