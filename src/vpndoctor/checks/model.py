"""Findings and the diagnose report: the JSON contract of `vpndoctor diagnose --json` (schema/diagnose.json).

Finding ids are the constants in `vpndoctor.checks.ids`, used alike by the CLI, JSON, docs and tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from vpndoctor.checks.ids import TITLES

Status = Literal["pass", "warn", "fail", "skip", "error"]


# Stdlib dataclasses, not pydantic models: every report carries findings, and building pydantic's validators
# for them cost `vpndoctor capture --json` half its start-up (bench/startup.py). pydantic still writes their
# JSON Schemas (scripts/gen_schemas.py; `__pydantic_config__` forbids extra keys there), and models that hold
# them (TlsReport, ...) validate them as dataclasses.
_FORBID = {"extra": "forbid"}


@dataclass(frozen=True, kw_only=True)
class Finding:
    id: str
    status: Status
    title: str
    detail: str
    evidence: dict[str, Any] = field(default_factory=dict)
    remedy: str = ""
    error_codes: list[int] = field(default_factory=list)  # what a Windows client would show

    __pydantic_config__ = _FORBID


@dataclass(frozen=True, kw_only=True)
class Verdict:
    status: Literal["healthy", "problems"]
    root_causes: list[str]  # failing finding ids that explain the symptom, most likely first
    summary: str  # the verdict paragraph, in words

    __pydantic_config__ = _FORBID


@dataclass(frozen=True, kw_only=True)
class Target:
    name: str
    addresses: list[str]

    __pydantic_config__ = _FORBID


@dataclass(frozen=True, kw_only=True)
class Politeness:
    """How much of the gateway's patience the run used (see net/polite.py)."""

    max_half_open: int  # the budget: our IKE SAs the server may hold at once
    limit_now: int  # the budget at the end of the run (lowered_to_one: 1)
    peak_half_open: int  # the most of our SAs the server could have held at once
    unconfirmed_ends: int  # SAs whose end the server never confirmed (they time out there)
    cookie_demanded: bool  # the server asked for a COOKIE (answered; it costs a round trip)
    lowered_to_one: bool  # an IKE_SA_INIT was answered only when sent again: one SA at a time since
    datagrams_sent: int  # IKE datagrams to the target, retransmissions included
    rate_cap_pps: float

    __pydantic_config__ = _FORBID


@dataclass(frozen=True, kw_only=True)
class DiagnoseReport:
    tool: dict[str, str]
    target: Target
    started_at: str
    duration_s: float
    round_trips: int  # sequential round trips on the critical path
    verdict: Verdict
    findings: list[Finding]
    politeness: Politeness | None = None  # None when no IKE probe ran

    __pydantic_config__ = _FORBID


def finding(
    fid: str,
    status: Status,
    detail: str,
    evidence: Mapping[str, object] | None = None,
    remedy: str = "",
    codes: Iterable[int] = (),
    title: str | None = None,
) -> Finding:
    """A finding for a stable id, titled from the one table in `checks.ids`."""
    return Finding(
        id=fid,
        status=status,
        title=title or TITLES[fid],
        detail=detail,
        evidence=dict(evidence or {}),
        remedy=remedy,
        error_codes=list(codes),
    )
