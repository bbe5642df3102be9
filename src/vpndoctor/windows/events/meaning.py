"""What one relevant event says: a RasClient step of a connection attempt (CoId, user, connection, code),
an NPS decision (6272/6273) or another provider's error (IKEEXT, SSTP, RemoteAccess, IPsec audit failures).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from vpndoctor.errors import UsageError
from vpndoctor.windows import errorcodes
from vpndoctor.windows.events.records import RawEvent, _int

RASCLIENT = "RasClient"
SECURITY_AUDITING = "Microsoft-Windows-Security-Auditing"
NPS_GRANTED, NPS_DENIED = 6272, 6273
# Providers whose errors and warnings are worth showing next to the RasClient story (server side too).
OTHER_PROVIDER_HINTS = ("ikeext", "sstpsvc", "rassstp", "remoteaccess", "rasman")
IPSEC_AUDIT_FAILURES = {
    4653: "IPsec main mode negotiation failed",
    4654: "IPsec quick mode negotiation failed",
}

# RasClient event IDs -> the stage of a connection attempt. 20221-20225 and the failure events 20220/20227
# are Microsoft's ("RAS Connection Establishment"); 20226 (terminated, with a reason code) follows the
# RasClient message text; 20276 is the authentication mismatch the Always On VPN troubleshooting page ties to
# error 812. Any other RasClient event joins its attempt's timeline as "event N".
RAS_STAGES: dict[int, str] = {
    20220: "failed",
    20221: "dialing",
    20222: "connecting device",
    20223: "device connected",
    20224: "link established",
    20225: "connected",
    20226: "disconnected",
    20227: "failed",
    20276: "authentication protocol mismatch",
}
FAILURE_EVENTS = frozenset({20220, 20227})

_GUID = r"\{?([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})\}?"
_GUID_RE = re.compile(rf"(?:CoId=)?{_GUID}", re.IGNORECASE)
_COID_TEXT_RE = re.compile(rf"CoId={_GUID}", re.IGNORECASE)
_CODE = r"[-+]?(?:0x[0-9A-Fa-f]+|[0-9]+)"
# Microsoft's RasClient message texts, with CoId= prefix removed (the CSV export only has these).
_RAS_TEXT: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.DOTALL)
    for p in (
        r"The user (?P<user>.+?) dialed a connection named (?P<conn>.+?) which has (?:failed|terminated)\. "
        rf"The (?:error|reason) code returned on (?:failure|termination) is (?P<code>{_CODE})",
        r"The user (?P<user>.+?) has dialed a connection named (?P<conn>.+?) to the Remote Access Server",
        r"The user (?P<user>.+?) is trying to establish a link to the Remote Access Server for the "
        r"connection named (?P<conn>.+?) using",
        r"The user (?P<user>.+?) has started dialing an? .*?connection profile named (?P<conn>.+?)\. "
        r"The connection settings",
        r"The user (?P<user>.+?) has successfully established a link",
        r"has been established by user (?P<user>.+?)\.?\s*$",
        rf"The connection to (?P<server>.+?) made using device .+? was terminated\. The error code "
        rf"returned on failure is (?P<code>{_CODE})",
    )
)
_ERROR_CODE_TEXT_RE = re.compile(rf"error code returned on failure is ({_CODE})", re.IGNORECASE)
_NPS_TEXT = {
    "user": re.compile(r"Fully Qualified Account Name:[ \t]*([^\r\n\t]*)"),
    "reason_code": re.compile(r"Reason Code:[ \t]*([0-9]+)"),
    "reason": re.compile(r"Reason:[ \t]*([^\r\n]*)"),
    "network_policy": re.compile(r"Network Policy Name:[ \t]*([^\r\n\t]*)"),
    "connection_request_policy": re.compile(r"(?:Connection Request|Proxy) Policy Name:[ \t]*([^\r\n\t]*)"),
    "client_ip": re.compile(r"Client IP Address:[ \t]*([^\r\n\t]*)"),
    "calling_station": re.compile(r"Calling Station Identifier:[ \t]*([^\r\n\t]*)"),
    "authentication_type": re.compile(r"Authentication Type:[ \t]*([^\r\n\t]*)"),
    "eap_type": re.compile(r"EAP Type:[ \t]*([^\r\n\t]*)"),
}


@dataclass(frozen=True)
class RasEvent:
    time: datetime | None
    event_id: int
    stage: str
    coid: str | None
    user: str | None
    connection: str | None
    code: int | None  # the error code (20220/20227) or termination reason (20226)
    order: int  # position in the input, for a stable timeline when times tie


@dataclass(frozen=True)
class NpsEvent:
    time: datetime | None
    event_id: int
    granted: bool
    user: str | None
    reason_code: int | None
    reason: str | None
    network_policy: str | None
    connection_request_policy: str | None
    client_ip: str | None
    calling_station: str | None
    authentication_type: str | None
    eap_type: str | None


@dataclass(frozen=True)
class OtherEvent:
    time: datetime | None
    provider: str
    event_id: int
    level: int | None
    text: str


def ras_event(ev: RawEvent, order: int) -> RasEvent:
    """Read CoId, user, connection and code from a RasClient event: message text when there is one
    (CSV, RenderedXml), else the insertion strings {CoId, user, connection, code} Microsoft documents."""
    stage = RAS_STAGES.get(ev.event_id, f"event {ev.event_id}")
    coid = user = conn = None
    code: int | None = None
    fields = list(ev.data)
    if fields and (m := _GUID_RE.fullmatch(fields[0].strip())):
        coid = m.group(1).upper()
        fields = fields[1:]
    if ev.event_id in (20222, 20225, 20226, 20227) and len(fields) >= 2:
        user, conn = fields[0], fields[1]
    elif ev.event_id in (20221, 20223, 20224) and fields:
        user = fields[0]
    if ev.event_id in (20226, 20227) and len(fields) >= 3:
        code = _code(fields[2])
    elif ev.event_id == 20220 and fields:
        code = _code(fields[-1])
    if ev.message:
        text = ev.message.strip()
        if m := _COID_TEXT_RE.search(text):
            coid = coid or m.group(1).upper()
            text = text[m.end() :].lstrip(": ")
        for pattern in _RAS_TEXT:
            if mt := pattern.search(text):
                groups = mt.groupdict()
                user = groups.get("user") or user
                conn = groups.get("conn") or conn
                if groups.get("code"):
                    code = _code(groups["code"])
                break
        if code is None and ev.event_id in FAILURE_EVENTS and (mc := _ERROR_CODE_TEXT_RE.search(text)):
            code = _code(mc.group(1))
    return RasEvent(
        time=ev.time,
        event_id=ev.event_id,
        stage=stage,
        coid=coid,
        user=_clean(user),
        connection=_clean(conn),
        code=code,
        order=order,
    )


def nps_event(ev: RawEvent) -> NpsEvent:
    values: dict[str, str | None] = {}
    if ev.named:
        user = ev.get("FullyQualifiedSubjectUserName")
        if not _clean(user):
            name, domain = _clean(ev.get("SubjectUserName")), _clean(ev.get("SubjectDomainName"))
            user = f"{domain}\\{name}" if name and domain else name
        values = {
            "user": user,
            "reason_code": ev.get("ReasonCode"),
            "reason": ev.get("Reason"),
            "network_policy": ev.get("NetworkPolicyName"),
            "connection_request_policy": ev.get("ProxyPolicyName"),
            "client_ip": ev.get("ClientIPAddress"),
            "calling_station": ev.get("CallingStationID"),
            "authentication_type": ev.get("AuthenticationType"),
            "eap_type": ev.get("EAPType"),
        }
    elif ev.message:
        for key, pattern in _NPS_TEXT.items():
            m = pattern.search(ev.message)
            values[key] = m.group(1) if m else None
    return NpsEvent(
        time=ev.time,
        event_id=ev.event_id,
        granted=ev.event_id == NPS_GRANTED,
        user=_clean(values.get("user")),
        reason_code=_int(values.get("reason_code")),
        reason=_clean(values.get("reason")),
        network_policy=_clean(values.get("network_policy")),
        connection_request_policy=_clean(values.get("connection_request_policy")),
        client_ip=_clean(values.get("client_ip")),
        calling_station=_clean(values.get("calling_station")),
        authentication_type=_clean(values.get("authentication_type")),
        eap_type=_clean(values.get("eap_type")),
    )


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    v = " ".join(value.split())
    return None if v in ("", "-") else v


def _code(text: str) -> int | None:
    try:
        return errorcodes.parse_code(text.strip().rstrip("."))
    except UsageError:
        return None


def is_other_relevant(ev: RawEvent) -> bool:
    if ev.provider.casefold() == SECURITY_AUDITING.casefold():
        return ev.event_id in IPSEC_AUDIT_FAILURES
    name = ev.provider.casefold()
    # Errors and warnings only: these services log every successful negotiation too.
    return any(h in name for h in OTHER_PROVIDER_HINTS) and (ev.level is None or 1 <= ev.level <= 3)


def other_event(ev: RawEvent) -> OtherEvent:
    if ev.message:
        text = ev.message
    else:
        parts = list(ev.data) + [f"{k}={v}" for k, v in ev.named if v and v != "-"]
        text = "; ".join(parts)
        if ev.event_id in IPSEC_AUDIT_FAILURES and ev.provider.casefold() == SECURITY_AUDITING.casefold():
            text = f"{IPSEC_AUDIT_FAILURES[ev.event_id]}: {text}"
    text = " ".join(text.split())
    return OtherEvent(ev.time, ev.provider, ev.event_id, ev.level, text[:300])
