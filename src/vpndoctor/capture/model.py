"""The capture report: the JSON contract of `vpndoctor capture --json`.

Findings and the verdict reuse the diagnose shapes so that renderers and consumers treat both alike.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from vpndoctor.checks.model import Finding, Verdict

__all__ = ["CaptureReport", "Conversation", "IkeMessageInfo"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IkeMessageInfo(_Model):
    t: float  # capture timestamp, seconds since the epoch
    exchange: str
    message_id: int
    response: bool
    initiator: bool  # sent by the original initiator (the I flag)
    ip_fragmented: bool
    size: int  # IKE message bytes (from the header's length field when only part of it was captured)
    payloads: list[str]
    notifies: list[str]
    retransmission: bool  # the same bytes were already seen for this exchange, message id and direction
    port: int  # 500 or 4500
    fragment: str | None = None  # "n/total" for an IKEv2 fragment (SKF, RFC 7383)


class Conversation(_Model):
    initiator: str  # "ip:port"
    responder: str
    spi_i: str  # hex
    spi_r: str  # hex; all zeros until the responder answers
    messages: list[IkeMessageInfo]


class CaptureReport(_Model):
    file: str
    packets: int
    ike_messages: int
    conversations: list[Conversation]
    findings: list[Finding]
    verdict: Verdict
    warnings: list[str]
