"""`vpndoctor capture FILE`: a packet capture's IKE/SSTP conversations and what went wrong in them."""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from vpndoctor.cli.output import check_writable, emit

if TYPE_CHECKING:
    from rich.console import Console

    from vpndoctor.capture.model import CaptureReport

app = typer.Typer()


@app.command("capture")
def capture(
    file: Annotated[str, typer.Argument(help="pcap or pcapng file (gzip too); - reads stdin.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object on stdout (schema/capture.json).")
    ] = False,
    keys: Annotated[
        str | None,
        typer.Option(
            "--keys",
            help="IKEv2 keys to decrypt SK/SKF payloads: Wireshark ikev2_decryption_table lines or tcpdump "
            "-E 'ikev2 I|R ...' lines.",
        ),
    ] = None,
    html: Annotated[
        str | None,
        typer.Option("--html", help="Also write a self-contained HTML report (SVG ladder) to this file."),
    ] = None,
) -> None:
    """What happened on the wire, and why it failed: IKE conversations, retransmissions, lost fragments.

    Exit 0 when the capture was read (whatever it found), 2 when it cannot be read.
    """
    from vpndoctor.capture.analysis import analyse

    table = None
    if keys is not None:
        from vpndoctor.capture.decrypt import load_keys

        table = load_keys(keys)
    check_writable(html)
    _note_slow_walk(file)
    # Freeze the ~37,000 objects start-up left (typer, pydantic, rich), as the gc module documents for a
    # process that imports and then works: the collections a big capture's analysis triggers, and the one at
    # exit, then skip them. Measured on a 1 GB capture: about 0.3 s less, a fifth of the run.
    gc.freeze()
    report = analyse(file, name=file, keys=table)
    emit(report, as_json=as_json, render=_render, html=html, render_html=_render_html)


def _render(report: CaptureReport, console: Console) -> None:
    from vpndoctor.report.capture import render_capture

    render_capture(report, console)


def _render_html(report: CaptureReport) -> str:
    from vpndoctor.report.capture_html import render_capture_html

    return render_capture_html(report)


def _note_slow_walk(file: str) -> None:
    """A big capture read without the C record walk (built at install when gcc and Python's headers are
    there) takes about three times as long: say why."""
    from vpndoctor.capture import fastpath

    with contextlib.suppress(OSError):
        if fastpath.native is None and file != "-" and os.stat(file).st_size >= fastpath.PARALLEL_MIN_BYTES:
            print(
                "vpndoctor: note: the C record walk is not built (gcc or Python's headers were missing at "
                "install: run `make install`), so this file is read at Python speed",
                file=sys.stderr,
            )


