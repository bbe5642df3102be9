"""HTML rendering of a `CaptureReport`: one self-contained page (inline CSS, SVG and a small inline script,
nothing fetched) with an SVG ladder per IKE conversation, one arrow per datagram, and each message's detail
shown on click. The geometry is computed here; the template only places it.

Everything in the capture may come from a hostile peer: the template autoescapes, and the page's CSP allows
only the one inline script whose hash it names.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import jinja2

from vpndoctor.capture.model import CaptureReport, Conversation, IkeMessageInfo
from vpndoctor.checks.model import Status
from vpndoctor.report.capture import arrow_label, message_marks, payload_list
from vpndoctor.report.capture_tcp import tcp_flow_summary

__all__ = ["render_capture_html"]

# A page a browser still opens: the JSON has everything, the page says what it left out.
MAX_LADDERS = 100
MAX_ARROWS_PER_LADDER = 1000
_MAX_TCP_ROWS = 200
_STATUS_ORDER: tuple[Status, ...] = ("fail", "error", "warn", "pass", "skip")

# SVG geometry, in px
_WIDTH = 920
_LEFT_X = 190  # initiator lifeline
_RIGHT_X = 770  # responder lifeline
_TOP = 64  # first arrow
_ROW = 38  # between arrows

# The page's only script: clicking an arrow (or following #m-<id>) shows that message's detail; it records
# what it set up in data- attributes so a headless browser test can see the script ran.
_SCRIPT = """
(function () {
  "use strict";
  var current = null;
  function show(id) {
    var panel = document.getElementById(id);
    if (!panel) { return; }
    if (current) { current.classList.remove("open"); }
    document.querySelectorAll(".dgram.selected").forEach(function (g) { g.classList.remove("selected"); });
    panel.classList.add("open");
    current = panel;
    var arrow = document.querySelector('.dgram[data-detail="' + id + '"]');
    if (arrow) { arrow.classList.add("selected"); }
  }
  var arrows = document.querySelectorAll("svg.ladder .dgram");
  arrows.forEach(function (g) {
    g.addEventListener("click", function (ev) {
      ev.preventDefault();
      show(g.getAttribute("data-detail"));
      history.replaceState(null, "", "#" + g.getAttribute("data-detail"));
    });
  });
  if (location.hash.length > 1) { show(location.hash.slice(1)); }
  document.body.setAttribute("data-arrows", String(arrows.length));
  document.body.setAttribute("data-ready", "yes");
})();
""".strip()


@dataclass(frozen=True)
class _Arrow:
    detail_id: str
    y: int
    x1: int
    x2: int
    label: str
    time: str
    size: str
    marks: str
    payloads: str
    classes: str
    message: IkeMessageInfo


@dataclass(frozen=True)
class _Ladder:
    conv: Conversation
    index: int
    height: int
    arrows: list[_Arrow]


def _classes(m: IkeMessageInfo) -> str:
    out = ["response" if m.response else "request"]
    if m.retransmission:
        out.append("retransmission")
    if m.ip_fragmented:
        out.append("ipfrag")
    if m.ip_fragments_missing:
        out.append("lost")
    if m.decrypted is not None:
        out.append(f"decrypted-{m.decrypted.integrity}")
    return " ".join(out)


def _ladder(conv: Conversation, index: int) -> _Ladder:
    arrows = []
    for i, m in enumerate(conv.messages[:MAX_ARROWS_PER_LADDER]):
        rightwards = m.initiator  # the I flag: sent by the original initiator
        x1, x2 = (_LEFT_X, _RIGHT_X) if rightwards else (_RIGHT_X, _LEFT_X)
        arrows.append(
            _Arrow(
                detail_id=f"m-{index}-{i}",
                y=_TOP + i * _ROW,
                x1=x1,
                x2=x2,
                label=arrow_label(m),
                time=f"{m.t_rel_s:.3f} s",
                size=f"{m.size} B",
                marks=", ".join(message_marks(m)),
                payloads=payload_list(m.payloads, m.notifies),
                classes=_classes(m),
                message=m,
            )
        )
    return _Ladder(conv, index, _TOP + max(len(arrows), 1) * _ROW, arrows)


def _pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def _utc(t: float) -> str:
    try:
        return datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return f"{t:.6f}"


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
    env.filters["utc"] = _utc
    return env


def render_capture_html(report: CaptureReport) -> str:
    counts = Counter(f.status for f in report.findings)
    script_hash = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    return (
        _environment()
        .get_template("capture.html.j2")
        .render(
            report=report,
            ladders=[_ladder(c, i) for i, c in enumerate(report.conversations[:MAX_LADDERS])],
            tcp_flows=[(f, tcp_flow_summary(f)) for f in report.tcp_flows[:_MAX_TCP_ROWS]],
            status_counts=[(s, counts[s]) for s in _STATUS_ORDER if counts[s]],
            width=_WIDTH,
            left_x=_LEFT_X,
            right_x=_RIGHT_X,
            script=_SCRIPT,
            script_hash=script_hash,
        )
    )
