"""The `vpndoctor` command line: one module per command (registered lazily in `cli.app`), one output helper
(`cli.output`); the work happens in probes/, checks/, capture/, windows/ and configgen/, the drawing in
report/.

`main` answers `--version` before importing typer: start-up is most of a short run's time.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from vpndoctor import __version__

        print(f"vpndoctor {__version__}")
        return
    from vpndoctor.cli.app import run

    run()
