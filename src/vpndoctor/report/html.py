"""HTML rendering of a `DiagnoseReport`: one self-contained page (inline CSS, no script, nothing fetched).

Evidence comes from hostile servers, so the template autoescapes everything and the page forbids scripts.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from typing import Any

import jinja2

from vpndoctor.checks.model import DiagnoseReport, Status

# The order statuses are counted in at the top of the page: worst first.
_STATUS_ORDER: tuple[Status, ...] = ("fail", "error", "warn", "pass", "skip")


def _pretty_json(value: Any) -> str:
    # default=str: evidence is meant to be JSON-ready, but a stray bytes or datetime must not break a report.
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("vpndoctor.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["pretty_json"] = _pretty_json
    return env


def render_html(report: DiagnoseReport) -> str:
    counts = Counter(f.status for f in report.findings)
    template = _environment().get_template("diagnose.html.j2")
    return template.render(
        report=report,
        status_counts=[(status, counts[status]) for status in _STATUS_ORDER if counts[status]],
        findings_by_id={f.id: f for f in report.findings},
    )
