"""Findings and the diagnose report: the JSON contract of `vpndoctor diagnose --json` (schema/diagnose.json).

Finding ids are the constants in `vpndoctor.checks.ids`, used alike by the CLI, JSON, docs and tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vpndoctor.checks.ids import TITLES

Status = Literal["pass", "warn", "fail", "skip", "error"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Finding(_Model):
    id: str
    status: Status
    title: str
    detail: str
    evidence: dict[str, Any] = Field(default_factory=dict)
    remedy: str = ""
    error_codes: list[int] = Field(default_factory=list)  # what a Windows client would show


class Verdict(_Model):
    status: Literal["healthy", "problems"]
    root_causes: list[str]  # failing finding ids that explain the symptom, most likely first
    summary: str  # the verdict paragraph, in words


class Target(_Model):
    name: str
    addresses: list[str]


class Politeness(_Model):
    """How much of the gateway's patience the run used (see net/polite.py)."""

    max_half_open: int  # the budget: our IKE SAs the server may hold at once
    limit_now: int  # the budget at the end of the run (lowered_to_one: 1)
    peak_half_open: int  # the most of our SAs the server could have held at once
    unconfirmed_ends: int  # SAs whose end the server never confirmed (they time out there)
    cookie_demanded: bool  # the server asked for a COOKIE (answered; it costs a round trip)
    lowered_to_one: bool  # an IKE_SA_INIT was answered only when sent again: one SA at a time since
    datagrams_sent: int  # IKE datagrams to the target, retransmissions included
    rate_cap_pps: float


class DiagnoseReport(_Model):
    tool: dict[str, str]
    target: Target
    started_at: str
    duration_s: float
    round_trips: int  # sequential round trips on the critical path
    verdict: Verdict
    findings: list[Finding]
    politeness: Politeness | None = None  # None when no IKE probe ran


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
