"""The terminal output of `vpndoctor explain` (one catalogue entry) and `vpndoctor events` (the attempts,
failures by code, NPS denials and the other errors, each table cut to its first rows; --json has them all)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:  # explain imports this module without the event readers
    from rich.console import Console

    from vpndoctor.windows.errorcodes import CodeForms, ErrorEntry
    from vpndoctor.windows.events import Attempt, CodeCount, EventsReport, NameCount

TOP = 10  # rows per summary table on the terminal; --json has them all
ATTEMPTS_SHOWN = 30  # most recent attempts listed on the terminal


def render_entry(
    entry: ErrorEntry, forms: CodeForms, console: Console, nps: bool
) -> None:
    label = f"NPS reason code {entry.code}" if nps else f"{entry.code if entry.code <= 0xFFFF else forms.hex}"
    name = f"  [bold]{escape(entry.name)}[/]" if entry.name else ""
    decoded = f"decimal {entry.code}" if nps else forms.text()
    console.print(f"[bold cyan]{escape(label)}[/]{name}  [dim]({escape(decoded)})[/]", soft_wrap=True)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")  # URLs and commands must stay whole, never cut with an ellipsis
    grid.add_row("Meaning", escape(entry.meaning))
    if entry.causes:
        grid.add_row("Usual causes", "\n".join(f"• {escape(c)}" for c in entry.causes))
    if entry.checks:
        lines = []
        for c in entry.checks:
            lines.append(f"• {escape(c.what)}")
            if c.command:
                lines.append(f"    [green]$ {escape(c.command)}[/]")
        grid.add_row("What to check", "\n".join(lines))
    grid.add_row("Fix", escape(entry.fix))
    grid.add_row("Source", escape(entry.source))
    for url in entry.see_also:
        grid.add_row("See also", escape(url))
    if entry.notes:
        grid.add_row("Notes", f"[dim]{escape(entry.notes)}[/]")
    console.print(grid)


def render_events(report: EventsReport, console: Console) -> None:
    files = ", ".join(f"{Path(f.path).name} ({f.format}, {f.records})" for f in report.files)
    console.print(
        f"Read {report.records} records from {len(report.files)} file(s): {escape(files)}", soft_wrap=True
    )
    if report.rasclient_events == 0:
        console.print(
            "[bold]No RasClient events[/] in these files (Always On VPN clients log them in Application)."
        )
    else:
        _render_ras(report, console)
    if report.nps.granted or report.nps.denied:
        _render_nps(report, console)
    if report.other_events_total:
        _render_other(report, console)
    if report.rasclient_events == 0:
        table = Table("provider", "records", title="Providers seen", title_justify="left")
        for p in report.providers[: TOP * 2]:
            table.add_row(escape(p.provider), str(p.count))
        console.print(table)
        more = len(report.providers) - TOP * 2
        if more > 0:
            console.print(f"[dim]... and {more} more providers (--json lists them all)[/]")


def _render_ras(report: EventsReport, console: Console) -> None:
    s = report.summary
    console.print(
        f"[bold]{s.attempts} connection attempt(s)[/] from {report.rasclient_events} RasClient events: "
        f"[green]{s.connected} connected[/], [red]{s.failed} failed[/], {s.incomplete} incomplete"
    )
    if s.failures_by_code:
        table = Table(
            "error", "name", "failures", "meaning", title="Failures by error code", title_justify="left"
        )
        for c in s.failures_by_code[:TOP]:
            table.add_row(_code_label(c), escape(c.name or "-"), str(c.count), escape(_short(c.meaning)))
        console.print(table)
        console.print("[dim]`vpndoctor explain CODE` for causes, checks and the fix.[/]")
    for title, rows in (("By connection", s.by_connection), ("By user", s.by_user)):
        _render_names(title, rows, console)
    if s.by_day:
        table = Table("day", "attempts", "failures", title="Over time", title_justify="left")
        for b in s.by_day[-TOP:]:
            table.add_row(b.period, str(b.attempts), str(b.failures))
        console.print(table)
    shown = report.attempts[-ATTEMPTS_SHOWN:]
    table = Table(
        "started", "user", "connection", "outcome", "timeline", title="Attempts", title_justify="left"
    )
    for a in shown:
        table.add_row(
            escape(a.started or "-"),
            escape(a.user or "-"),
            escape(a.connection or "-"),
            _outcome(a),
            _timeline(a),
        )
    console.print(table)
    if len(report.attempts) > len(shown):
        console.print(
            f"[dim]{len(report.attempts) - len(shown)} earlier attempts not shown (--json has them).[/]"
        )


def _render_nps(report: EventsReport, console: Console) -> None:
    n = report.nps
    console.print(f"[bold]NPS[/]: {n.granted} granted (6272), [red]{n.denied} denied[/] (6273)")
    if n.denied_by_reason:
        table = Table("reason", "denials", "meaning", title="Denials by reason code", title_justify="left")
        for c in n.denied_by_reason[:TOP]:
            table.add_row(str(c.code), str(c.count), escape(_short(c.meaning)))
        console.print(table)
        console.print("[dim]`vpndoctor explain --nps CODE` for causes and the fix.[/]")
    _render_names("Denied users", n.denied_by_user, console, count_label="denials", failures=False)


def _render_other(report: EventsReport, console: Console) -> None:
    table = Table(
        "time", "provider", "event", "text", title="IKEEXT / SSTP / RRAS errors", title_justify="left"
    )
    for o in report.other_events[-TOP:]:
        table.add_row(escape(o.time or "-"), escape(o.provider), str(o.event_id), escape(_short(o.text, 100)))
    console.print(table)
    if report.other_events_total > TOP:
        console.print(f"[dim]{report.other_events_total} such events in all (--json lists up to 1000).[/]")


def _render_names(
    title: str, rows: list[NameCount], console: Console, count_label: str = "attempts", failures: bool = True
) -> None:
    if not rows:
        return
    table = Table("name", count_label, *(["failures"] if failures else []), title=title, title_justify="left")
    for r in rows[:TOP]:
        table.add_row(escape(r.name), str(r.attempts), *([str(r.failures)] if failures else []))
    console.print(table)


def _code_label(c: CodeCount) -> str:
    return str(c.code) if c.code <= 0xFFFF else c.hex


def _outcome(a: Attempt) -> str:
    if a.outcome == "failed":
        code = f" {a.error.code if a.error.code <= 0xFFFF else a.error.hex}" if a.error else ""
        return f"[red]failed{code}[/]"
    if a.outcome in ("connected", "disconnected"):
        return f"[green]{a.outcome}[/]"
    return a.outcome


def _timeline(a: Attempt) -> str:
    steps = " → ".join(str(s.event_id) for s in a.steps)
    return escape(steps + (f" (+{a.steps_dropped})" if a.steps_dropped else ""))


def _short(text: str | None, width: int = 80) -> str:
    if not text:
        return "-"
    return text if len(text) <= width else text[: width - 1] + "…"
