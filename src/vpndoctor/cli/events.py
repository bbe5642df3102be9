"""`vpndoctor explain` and `vpndoctor events`: typer commands.

Decoding lives in `windows.errorcodes`, reading and grouping events in `windows.events`, the drawing in
`report.events`; this module only wires options and picks the exit code.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from vpndoctor.cli.output import emit, out, warn

explain_app = typer.Typer()
events_app = typer.Typer()


# A negative HRESULT such as -2146885613 must not be taken for an option.
@explain_app.command("explain", context_settings={"ignore_unknown_options": True})
def explain_cmd(
    code: Annotated[
        str,
        typer.Argument(
            help="809, 0x80092013, -2146885613, 800B0109 or ERROR_VPN_TIMEOUT (with --nps: a reason code).",
            metavar="CODE",
        ),
    ],
    nps: Annotated[
        bool, typer.Option("--nps", help="CODE is an NPS reason code (Security event 6273), e.g. 16 or 66.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """What a Windows VPN error code means: usual causes, what to check (and the vpndoctor command), the fix.

    Exit 0 when the code is in the catalogue, 1 when it is not, 2 on a usage error.
    """
    from vpndoctor.windows import errorcodes

    if nps:
        value = errorcodes.parse_nps_code(code)
        entry = errorcodes.lookup_nps(value)
    else:
        value = errorcodes.parse_code(code)
        entry = errorcodes.lookup(value)
    forms = errorcodes.forms(value)
    if as_json:
        doc = {
            "input": code,
            "kind": "nps_reason_code" if nps else "error_code",
            "forms": asdict(forms),
            "entry": asdict(entry) if entry else None,
        }
        emit(doc, as_json=True)
    if entry is None:
        message = (
            f"no NPS reason code {value} in the catalogue" if nps else f"no entry for {code} ({forms.text()})"
        )
        warn(message, label="")
        raise typer.Exit(1)
    if not as_json:
        from vpndoctor.report.events import render_entry

        render_entry(entry, forms, out, nps=nps)


@events_app.command("events")
def events_cmd(
    files: Annotated[
        list[str],
        typer.Argument(
            help="Exported logs: .evtx, `wevtutil qe LOG /f:xml` output, or Event Viewer CSV (any mix); "
            "- reads stdin.",
            metavar="FILE...",
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object on stdout (the EventsReport schema).")
    ] = False,
) -> None:
    """Read RasClient (20220-20227), NPS (6272/6273), IKEEXT and SSTP events: attempts, failures, why.

    Exit 0 when the files were read (damaged EVTX chunks are skipped with a warning), 2 on a bad file
    (one line on stderr; also a FIFO without a writer, a terminal, or input past the limits on nesting and
    size that keep memory flat).
    """
    from vpndoctor.report.events import render_events
    from vpndoctor.windows.events import analyse

    report = analyse(Path(f) for f in files)
    for w in report.warnings:
        warn(w)
    emit(report, as_json=as_json, render=render_events)
