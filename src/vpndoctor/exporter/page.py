"""The exporter's own pages: `/` (the recent probes, their verdicts, a link to each one's report) and
`/report?id=N` (a diagnose probe's full HTML report, or the findings and JSON of the others).

Pure rendering through jinja2 with autoescaping: targets, summaries and evidence come from hostile servers
or from whoever can reach the endpoint. Inline CSS only; nothing is fetched, no script runs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Protocol

import jinja2

from vpndoctor.checks.model import DiagnoseReport
from vpndoctor.exporter.metrics import Outcome

_CSS = """body{font:14px/1.4 sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
.ok{color:#176d2b;font-weight:bold}.bad{color:#b00020;font-weight:bold}pre{white-space:pre-wrap;background:#f6f6f6;
padding:.6em}"""

_INDEX = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>vpndoctor exporter</title><style>{{ css }}</style></head><body>
<h1>vpndoctor exporter</h1>
<p>Endpoints: <a href="/metrics">/metrics</a> (the exporter's own), <code>/probe?module=M&amp;target=T</code>,
<code>/-/healthy</code>, <code>POST /-/reload</code>. Modules: {{ modules|join(", ") }}.</p>
<h2>Recent probes</h2>
{% if rows %}<table><tr><th>#</th><th>started (UTC)</th><th>module</th><th>target</th><th>address</th>
<th>result</th><th>seconds</th><th>summary</th><th>report</th></tr>
{% for r in rows %}<tr><td>{{ r.id }}</td><td>{{ r.outcome.started_at }}</td><td>{{ r.outcome.module }}</td>
<td>{{ r.outcome.target }}</td><td>{{ r.outcome.address or "" }}</td>
<td class="{{ 'ok' if r.outcome.success else 'bad' }}">
{{ "success" if r.outcome.success else "failure" }}</td>
<td>{{ "%.2f"|format(r.outcome.duration_s) }}</td><td>{{ r.outcome.summary }}</td>
<td><a href="/report?id={{ r.id }}">report</a></td></tr>
{% endfor %}</table>{% else %}<p>No probe yet.</p>{% endif %}
<p>Page made {{ now }}.</p></body></html>
"""

_REPORT = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>vpndoctor {{ o.prober }} {{ o.target }}</title><style>{{ css }}</style></head><body>
<p><a href="/">all recent probes</a></p>
<h1>{{ o.prober }} probe #{{ id }}: {{ o.target }}</h1>
<table><tr><th>module</th><td>{{ o.module }}</td></tr>
<tr><th>address probed</th><td>{{ o.address or "" }}</td></tr>
<tr><th>started (UTC)</th><td>{{ o.started_at }}</td></tr>
<tr><th>result</th><td class="{{ 'ok' if o.success else 'bad' }}">
{{ "success" if o.success else "failure" }}</td></tr>
<tr><th>stage reached</th><td>{{ o.stage }}</td></tr><tr><th>summary</th><td>{{ o.summary }}</td></tr></table>
{% if o.findings %}<h2>Findings</h2><table><tr><th>id</th><th>status</th><th>title</th><th>detail</th></tr>
{% for f in o.findings %}<tr><td>{{ f.id }}</td>
<td class="{{ 'bad' if f.status == 'fail' else '' }}">{{ f.status }}</td>
<td>{{ f.title }}</td><td>{{ f.detail }}</td></tr>{% endfor %}</table>{% endif %}
{% if data %}<h2>Observation</h2><pre>{{ data }}</pre>{% endif %}
</body></html>
"""


@cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.DictLoader({"index": _INDEX, "report": _REPORT}),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


class _Row(Protocol):
    id: int
    outcome: Outcome


def render_index(rows: list[Any], modules: list[str]) -> str:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    return _env().get_template("index").render(rows=rows, modules=modules, now=now, css=_CSS)


def _as_json(report: Any) -> str:
    if report is None:
        return ""
    if hasattr(report, "model_dump"):
        data = report.model_dump(mode="json")
    elif is_dataclass(report) and not isinstance(report, type):
        data = asdict(report)
    else:
        data = report
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def render_report(record_id: int, o: Outcome) -> str:
    if isinstance(o.report, DiagnoseReport):
        from vpndoctor.report.html import render_html

        return render_html(o.report)
    return _env().get_template("report").render(id=record_id, o=o, data=_as_json(o.report), css=_CSS)
