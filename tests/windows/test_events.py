"""Reading RasClient / NPS / IKEEXT events from EVTX, wevtutil XML and Event Viewer CSV, and the report.

No public log with RasClient events exists, so the XML and CSV here are built from Microsoft's documented
formats: RasClient insertion strings {CoId, user, connection, code} and message texts ("CoId={...}: The user
X dialed a connection named Y which has failed. The error code returned on failure is 809."), and the named
<Data> fields of Security event 6273 (Network Policy Server denied access to a user).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import os
import threading
import time
import tracemalloc
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pytest

from vpndoctor.errors import UsageError
from vpndoctor.windows.events import (
    MAX_CSV_LINE_CHARS,
    MAX_XML_DEPTH,
    MAX_XML_EVENT_CHARS,
    MAX_XML_EVENT_ELEMENTS,
    MAX_XML_MARKUP_CHARS,
    SECURITY_AUDITING,
    EventsReport,
    RawEvent,
    analyse,
    detect_format,
    nps_event,
    ras_event,
    read_file,
)
from vpndoctor.windows.events.evtx_reader import _from_evtx_json
from vpndoctor.windows.events.xml_reader import _RootedXml

NS = "http://schemas.microsoft.com/win/2004/08/events/event"

COID_A = "{5D8C6E4A-1B2C-4D3E-8F90-A1B2C3D4E5F6}"
COID_B = "{0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0}"
COID_C = "{B4000371-A67F-452F-AA4C-3125AA9CFC78}"
COID_D = "{E58353A3-B9A8-0000-4A6E-84E5A8B9DB01}"
COID_E = "{11111111-2222-3333-4444-555555555555}"
ALICE = "CORP\\alice"
JOSE = "josé.müller@corp.example.net"  # UPN with non-ASCII letters
ZOE = "CORP\\Zoë"
VPN = "Contoso VPN"
DEVICE = "Contoso Device Tunnel"


def shared_evtx_dir() -> Path | None:
    here = Path(__file__).resolve().parents[3] / "shared" / "evtx"
    if here.is_dir():
        return here
    env = os.environ.get("VPNDOCTOR_SHARED")
    if env and (Path(env) / "evtx").is_dir():
        return Path(env) / "evtx"
    return None


def sample(name: str) -> Path:
    base = shared_evtx_dir()
    if base is None or not (base / name).is_file():
        pytest.skip(f"{name} not found (../shared/evtx or $VPNDOCTOR_SHARED/evtx)")
    return base / name


def event_xml(
    provider: str,
    event_id: int,
    time: str,
    record: int,
    data: tuple[str, ...] = (),
    named: tuple[tuple[str, str], ...] = (),
    level: int = 4,
    channel: str = "Application",
) -> str:
    """One event as `wevtutil qe /f:xml` prints it (classic providers: unnamed <Data>; auditing: named)."""
    body = "".join(f"<Data>{escape(d)}</Data>" for d in data)
    body += "".join(f"<Data Name={quoteattr(k)}>{escape(v)}</Data>" for k, v in named)
    qualifiers = ' Qualifiers="0"' if not named else ""
    return (
        f'<Event xmlns="{NS}"><System><Provider Name={quoteattr(provider)}/>'
        f"<EventID{qualifiers}>{event_id}</EventID><Version>0</Version><Level>{level}</Level><Task>0</Task>"
        f"<Opcode>0</Opcode><Keywords>0x80000000000000</Keywords><TimeCreated SystemTime='{time}'/>"
        f"<EventRecordID>{record}</EventRecordID><Correlation/><Execution ProcessID='4' ThreadID='8'/>"
        f"<Channel>{channel}</Channel><Computer>PC-0042.corp.example.net</Computer>"
        f"<Security UserID='S-1-5-18'/></System><EventData>{body}</EventData></Event>"
    )


def nps_named(user: str, reason_code: int, reason: str) -> tuple[tuple[str, str], ...]:
    domain, _, name = user.rpartition("\\")
    return (
        ("SubjectUserSid", "S-1-5-21-1-2-3-1104"),
        ("SubjectUserName", name),
        ("SubjectDomainName", domain or "-"),
        ("FullyQualifiedSubjectUserName", user),
        ("SubjectMachineSID", "S-1-0-0"),
        ("SubjectMachineName", "-"),
        ("FullyQualifiedSubjectMachineName", "-"),
        ("CalledStationID", "203.0.113.10"),
        ("CallingStationID", "198.51.100.77"),
        ("NASIPv4Address", "10.0.0.5"),
        ("NASIPv6Address", "-"),
        ("NASIdentifier", "VPN01"),
        ("NASPortType", "Virtual"),
        ("NASPort", "1042"),
        ("ClientName", "VPN01"),
        ("ClientIPAddress", "10.0.0.5"),
        ("ProxyPolicyName", "Use Windows authentication for all users"),
        ("NetworkPolicyName", "Always On VPN" if reason_code == 0 else "-"),
        ("AuthenticationProvider", "Windows"),
        ("AuthenticationServer", "NPS01.corp.example.net"),
        ("AuthenticationType", "PEAP"),
        ("EAPType", "Microsoft: Smart Card or other certificate"),
        ("AccountSessionIdentifier", "-"),
        ("ReasonCode", str(reason_code)),
        ("Reason", reason),
        ("LoggingResult", "Accounting information was written to the local log file."),
    )


def scenario_events() -> list[str]:
    """Six connection attempts (two interleaved), NPS decisions, IKEEXT/IPsec errors, and unrelated noise."""
    r = iter(range(5000, 6000))
    ev: list[str] = []

    def ras(event_id: int, t: str, *fields: str) -> None:
        ev.append(event_xml("RasClient", event_id, t, next(r), fields, level=2 if event_id == 20227 else 4))

    ras(20221, "2024-03-15T08:00:00.1234567Z", COID_A, ALICE, "VPN", "per-user", VPN, "settings")
    ras(20222, "2024-03-15T08:00:01.0000000Z", COID_A, ALICE, VPN, "vpn.contoso.com", "WAN Miniport (IKEv2)")
    ras(20221, "2024-03-15T08:00:05.0000000Z", COID_B, JOSE, "VPN", "per-user", VPN, "settings")
    ras(20222, "2024-03-15T08:00:06.0000000Z", COID_B, JOSE, VPN, "vpn.contoso.com", "WAN Miniport (SSTP)")
    ras(20223, "2024-03-15T08:00:08.0000000Z", COID_B, JOSE, "vpn.contoso.com", "WAN Miniport (SSTP)")
    ras(20227, "2024-03-15T08:00:09.5000000Z", COID_B, JOSE, VPN, "-2146885613")
    ras(20227, "2024-03-15T08:00:31.0000000Z", COID_A, ALICE, VPN, "809")
    ev.append(event_xml("Microsoft-Windows-Winlogon", 7001, "2024-03-15T08:05:00Z", next(r), ("x",)))
    ras(20221, "2024-03-15T09:10:00.0000000Z", COID_C, ZOE, "VPN", "per-user", VPN, "settings")
    ras(20222, "2024-03-15T09:10:01.0000000Z", COID_C, ZOE, VPN, "vpn.contoso.com", "WAN Miniport (IKEv2)")
    ras(20223, "2024-03-15T09:10:02.0000000Z", COID_C, ZOE, "vpn.contoso.com", "WAN Miniport (IKEv2)")
    ras(20224, "2024-03-15T09:10:03.0000000Z", COID_C, ZOE)
    ras(20225, "2024-03-15T09:10:04.0000000Z", COID_C, ZOE, VPN)
    ras(20226, "2024-03-15T10:00:00.0000000Z", COID_C, ZOE, VPN, "631")
    # A legacy-format failure without a CoId: "The connection to %1 made using device %2 was terminated."
    ras(20220, "2024-03-15T11:00:00.0000000Z", "vpn.contoso.com", "WAN Miniport (IKEv2)", "809")
    ras(20221, "2024-03-16T07:00:00.0000000Z", COID_D, "SYSTEM", "VPN", "all-user", DEVICE, "settings")
    ras(20227, "2024-03-16T07:00:02.0000000Z", COID_D, "SYSTEM", DEVICE, "13868")
    ras(20221, "2024-03-16T07:30:00.0000000Z", COID_E, ALICE, "VPN", "per-user", VPN, "settings")
    sec = "Security"
    ev.append(
        event_xml(
            "Microsoft-Windows-Security-Auditing",
            6273,
            "2024-03-15T08:00:30Z",
            next(r),
            named=nps_named(ALICE, 16, "Authentication failed due to a user credentials mismatch."),
            level=0,
            channel=sec,
        )
    )
    ev.append(
        event_xml(
            "Microsoft-Windows-Security-Auditing",
            6273,
            "2024-03-15T08:01:30Z",
            next(r),
            named=nps_named("CORP\\josé", 66, "The user attempted to use an authentication method ..."),
            level=0,
            channel=sec,
        )
    )
    ev.append(
        event_xml(
            "Microsoft-Windows-Security-Auditing",
            6272,
            "2024-03-15T09:10:03Z",
            next(r),
            named=nps_named(ZOE, 0, "-"),
            level=0,
            channel=sec,
        )
    )
    ev.append(
        event_xml(
            "Microsoft-Windows-Security-Auditing",
            4653,
            "2024-03-16T07:00:01Z",
            next(r),
            named=(("LocalAddress", "203.0.113.10"), ("FailureReason", "No policy configured")),
            level=0,
            channel=sec,
        )
    )
    ev.append(event_xml("IKEEXT", 4285, "2024-03-16T07:00:01Z", next(r), ("IKEEXT error",), level=2))
    ev.append(event_xml("IKEEXT", 4286, "2024-03-16T07:00:01Z", next(r), ("IKEEXT info",), level=4))
    return ev


def wevtutil_text(events: list[str]) -> str:
    # wevtutil qe prints one <Event> per line, no XML declaration, no root element.
    return "\r\n".join(events) + "\r\n"


def write_xml(
    tmp_path: Path, events: list[str], name: str = "rasclient.xml", encoding: str = "utf-8"
) -> Path:
    path = tmp_path / name
    data = wevtutil_text(events).encode(encoding)
    if encoding == "utf-16-le":
        data = codecs.BOM_UTF16_LE + data
    path.write_bytes(data)
    return path


# --- Event Viewer CSV: the rendered messages, as Microsoft's message texts read ---------------------------


def csv_rows() -> list[list[str]]:
    def ras(level: str, when: str, event_id: int, coid: str, text: str) -> list[str]:
        return [level, when, "RasClient", str(event_id), "None", f"CoId={coid}: {text}"]

    return [
        ras(
            "Information",
            "3/15/2024 8:00:00 AM",
            20221,
            COID_A,
            f"The user {ALICE} has started dialing a VPN connection using a per-user connection profile "
            f"named {VPN}. The connection settings are: \nDial-in User = \nVpnStrategy = IKEv2\n"
            "DataEncryption = Require",
        ),
        ras(
            "Information",
            "3/15/2024 8:00:01 AM",
            20222,
            COID_A,
            f"The user {ALICE} is trying to establish a link to the Remote Access Server for the connection "
            f"named {VPN} using the following device: \nServer address/Phone Number = vpn.contoso.com",
        ),
        ras(
            "Information",
            "3/15/2024 8:00:05 AM",
            20221,
            COID_B,
            f"The user {JOSE} has started dialing a VPN connection using a per-user connection profile named "
            f"{VPN}. The connection settings are: \nVpnStrategy = SSTP",
        ),
        ras(
            "Error",
            "3/15/2024 8:00:09 AM",
            20227,
            COID_B,
            f"The user {JOSE} dialed a connection named {VPN} which has failed. The error code returned on "
            "failure is -2146885613.",
        ),
        ras(
            "Error",
            "3/15/2024 8:00:31 AM",
            20227,
            COID_A,
            f"The user {ALICE} dialed a connection named {VPN} which has failed. The error code returned on "
            "failure is 809.",
        ),
        ras(
            "Information",
            "3/15/2024 9:10:03 AM",
            20224,
            COID_C,
            f"The link to the Remote Access Server has been established by user {ZOE}.",
        ),
        ras(
            "Information",
            "3/15/2024 9:10:04 AM",
            20225,
            COID_C,
            f"The user {ZOE} has dialed a connection named {VPN} to the Remote Access Server which has "
            "successfully connected.",
        ),
        ras(
            "Information",
            "3/15/2024 10:00:00 AM",
            20226,
            COID_C,
            f"The user {ZOE} dialed a connection named {VPN} which has terminated. The reason code returned "
            "on termination is 631.",
        ),
        [
            "Error",
            "3/16/2024 7:00:02 AM",
            "RasClient",
            "20227",
            "None",
            f"CoId={COID_D}: The user SYSTEM dialed a connection named {DEVICE} which has failed. "
            "The error code returned on failure is 13868.",
        ],
        [
            "Information",
            "3/15/2024 8:00:30 AM",
            "Microsoft-Windows-Security-Auditing",
            "6273",
            "Network Policy Server",
            "Network Policy Server denied access to a user.\n\nContact the Network Policy Server "
            "administrator for more information.\n\nUser:\n\tSecurity ID:\t\t\tS-1-5-21-1-2-3-1104\n"
            "\tAccount Name:\t\t\talice"
            f"\n\tAccount Domain:\t\t\tCORP\n\tFully Qualified Account Name:\t{ALICE}\n\nClient Machine:\n"
            "\tSecurity ID:\t\t\tS-1-0-0\n\tAccount Name:\t\t\t-\n\tFully Qualified Account Name:\t-\n\n"
            "Authentication Details:\n\tConnection Request Policy Name:\tUse Windows authentication for all "
            "users\n\tNetwork Policy Name:\t\t-\n\tAuthentication Type:\t\tPEAP\n\tEAP Type:\t\t\t-\n\n"
            "\tReason Code:\t\t\t16\n\tReason:\t\t\t\tAuthentication failed due to a user credentials "
            "mismatch. Either the user name provided does not map to an existing user account or the "
            "password was incorrect.",
        ],
        ["Information", "3/15/2024 8:05:00 AM", "Microsoft-Windows-Winlogon", "7001", "(1101)", "noise"],
    ]


def write_csv(
    tmp_path: Path, rows: list[list[str]], name: str = "Application.csv", encoding: str = "utf-8-sig"
) -> Path:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(["Level", "Date and Time", "Source", "Event ID", "Task Category"])
    writer.writerows(rows)
    path = tmp_path / name
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def by_coid(report: EventsReport) -> dict[str | None, object]:
    return {a.coid: a for a in report.attempts}


# ---------------------------------------------------------------------------------------------------------
# wevtutil XML
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def xml_report(tmp_path: Path) -> EventsReport:
    return analyse([write_xml(tmp_path, scenario_events())])


def test_xml_attempts_grouped_by_coid(xml_report: EventsReport) -> None:
    r = xml_report
    assert r.files[0].format == "xml"
    assert r.records == len(scenario_events())
    assert r.rasclient_events == 17
    assert r.summary.attempts == 6  # five CoIds and one legacy 20220 without a CoId
    attempts = {a.coid: a for a in r.attempts}
    a, b = attempts[COID_A.strip("{}")], attempts[COID_B.strip("{}")]
    assert (a.user, a.connection, a.outcome) == (ALICE, VPN, "failed")
    assert a.error is not None and (a.error.code, a.error.name) == (809, "ERROR_VPN_TIMEOUT")
    assert [s.event_id for s in a.steps] == [20221, 20222, 20227]
    assert a.duration_s == pytest.approx(30.877, abs=0.001)
    # Interleaved in the file, apart in the report; the signed HRESULT decoded and explained.
    assert [s.event_id for s in b.steps] == [20221, 20222, 20223, 20227]
    assert b.user == JOSE
    assert b.error is not None and b.error.code == 0x80092013 and b.error.name == "CRYPT_E_REVOCATION_OFFLINE"
    c = attempts[COID_C.strip("{}")]
    assert c.outcome == "disconnected" and c.user == ZOE
    assert [s.stage for s in c.steps][-2:] == ["connected", "disconnected"]
    assert c.steps[-1].code == 631
    d = attempts[COID_D.strip("{}")]
    assert (d.user, d.connection, d.error.code if d.error else None) == ("SYSTEM", DEVICE, 13868)
    assert attempts[COID_E.strip("{}")].outcome == "incomplete"
    legacy = attempts[None]
    assert legacy.outcome == "failed" and legacy.error is not None and legacy.error.code == 809


def test_xml_summary(xml_report: EventsReport) -> None:
    s = xml_report.summary
    assert (s.connected, s.failed, s.incomplete) == (1, 4, 1)
    codes = {c.code: c for c in s.failures_by_code}
    assert codes[809].count == 2 and codes[809].meaning and "not responding" in codes[809].meaning
    assert codes[0x80092013].hex == "0x80092013" and codes[0x80092013].count == 1
    assert codes[13868].name == "ERROR_IPSEC_IKE_POLICY_MATCH"
    assert s.failures_by_code[0].code == 809  # most frequent first
    conns = {n.name: (n.attempts, n.failures) for n in s.by_connection}
    # The legacy 20220 names no connection, nor does a lone 20221 (its insertion strings are undocumented).
    assert conns == {VPN: (3, 2), DEVICE: (1, 1), "(unknown)": (2, 1)}
    users = {n.name: (n.attempts, n.failures) for n in s.by_user}
    assert users[ALICE] == (2, 1) and users[JOSE] == (1, 1) and users[ZOE] == (1, 0)
    assert [(b.period, b.attempts, b.failures) for b in s.by_day] == [
        ("2024-03-15", 4, 3),
        ("2024-03-16", 2, 1),
    ]
    assert ("2024-03-15T08", 2, 2) in [(b.period, b.attempts, b.failures) for b in s.by_hour]
    assert xml_report.attempts[0].started == "2024-03-15T08:00:00Z"  # oldest first, UTC


def test_xml_nps_and_other_providers(xml_report: EventsReport) -> None:
    n = xml_report.nps
    assert (n.granted, n.denied) == (1, 2)
    reasons = {c.code: c for c in n.denied_by_reason}
    assert set(reasons) == {16, 66}
    assert reasons[16].meaning and reasons[16].meaning.startswith(
        "Authentication failed due to a user credentials"
    )
    denied = [x for x in n.records if x.result == "denied"]
    assert denied[0].user == ALICE and denied[0].reason_code == 16
    assert denied[0].connection_request_policy == "Use Windows authentication for all users"
    assert denied[0].network_policy is None  # "-" in the event
    assert (
        denied[1].user == "CORP\\josé"
        and denied[1].reason_meaning
        and "not enabled" in denied[1].reason_meaning
    )
    others = {(o.provider, o.event_id) for o in xml_report.other_events}
    assert others == {("Microsoft-Windows-Security-Auditing", 4653), ("IKEEXT", 4285)}  # IKEEXT info skipped
    assert any("FailureReason=No policy configured" in o.text for o in xml_report.other_events)
    providers = {p.provider: p.count for p in xml_report.providers}
    assert providers["RasClient"] == 17 and providers["Microsoft-Windows-Winlogon"] == 1


def test_xml_with_declaration_and_events_root(tmp_path: Path) -> None:
    # Event Viewer's "Save as XML" wraps the same events in <Events> after an XML declaration.
    path = tmp_path / "saved.xml"
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<Events>' + "".join(scenario_events()) + "</Events>"
    )
    assert analyse([path]).summary.attempts == 6


def test_xml_utf16_without_line_breaks(tmp_path: Path) -> None:
    # PowerShell `wevtutil ... > file` writes UTF-16; events may follow each other without a newline.
    path = tmp_path / "ps.xml"
    path.write_bytes(codecs.BOM_UTF16_LE + "".join(scenario_events()).encode("utf-16-le"))
    report = analyse([path])
    assert report.summary.failed == 4
    assert JOSE in {a.user for a in report.attempts}


def test_rendered_xml_message_is_used(tmp_path: Path) -> None:
    # `/f:RenderedXml` adds <RenderingInfo><Message>; events without insertion strings still parse.
    msg = (
        f"CoId={COID_A}: The user {ALICE} dialed a connection named {VPN} which has failed. "
        "The error code returned on failure is 13801."
    )
    ev = event_xml("RasClient", 20227, "2024-03-15T08:00:31Z", 1).replace(
        "</Event>", f"<RenderingInfo Culture='en-US'><Message>{escape(msg)}</Message></RenderingInfo></Event>"
    )
    report = analyse([write_xml(tmp_path, [ev])])
    (a,) = report.attempts
    assert (a.coid, a.user, a.connection) == (COID_A.strip("{}"), ALICE, VPN)
    assert a.error is not None and a.error.name == "ERROR_IPSEC_IKE_AUTH_FAIL"


@pytest.mark.parametrize("cut", [0.5, 0.999])
def test_truncated_xml_is_one_line_usage_error(tmp_path: Path, cut: float) -> None:
    text = wevtutil_text(scenario_events())
    path = tmp_path / "cut.xml"
    path.write_text(text[: int(len(text) * cut)])
    with pytest.raises(UsageError, match="truncated or malformed XML") as exc:
        analyse([path])
    assert "\n" not in str(exc.value)


def test_xml_with_entities_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xml"
    path.write_text('<!DOCTYPE lolz [<!ENTITY lol "lol">]><Event xmlns="x">&lol;</Event>')
    with pytest.raises(UsageError) as exc:
        analyse([path])
    assert "\n" not in str(exc.value)


def test_xml_without_events_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.xml"
    path.write_text("<VPNProfile><AlwaysOn>true</AlwaysOn></VPNProfile>")
    with pytest.raises(UsageError, match="without <Event> elements"):
        analyse([path])


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.xml", b"", "empty file"),
        ("notes.txt", b"hello, world\n", "unknown format"),
        ("fake.evtx", b"not an evtx file at all", "not an EVTX file"),
        ("truncated.evtx", b"ElfFile\x00\x00\x00", "not a readable EVTX file"),
    ],
)
def test_bad_files(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UsageError, match=message) as exc:
        analyse([path])
    assert "\n" not in str(exc.value)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        detect_format(tmp_path / "nope.evtx")
    with pytest.raises(UsageError, match="is a directory"):
        detect_format(tmp_path)


def test_xml_memory_does_not_grow_with_file_size(tmp_path: Path) -> None:
    noise = event_xml("Microsoft-Windows-Winlogon", 7001, "2024-03-15T08:05:00Z", 1, ("x" * 200,))

    def peak(n: int) -> int:
        path = tmp_path / f"big{n}.xml"
        with path.open("w", encoding="utf-8") as fh:
            for _ in range(n):
                fh.write(noise + "\r\n")
            fh.write(scenario_events()[-1])
        tracemalloc.start()
        fmt, records = read_file(path)
        count = sum(1 for _ in records)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert fmt == "xml" and count == n + 1
        return top

    small, large = peak(500), peak(10_000)  # 20x the records (about 6 MB)
    assert large < small * 2 + 256 * 1024, (small, large)


# ---------------------------------------------------------------------------------------------------------
# Event Viewer CSV
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_csv_attempts_from_message_text(tmp_path: Path, encoding: str) -> None:
    path = write_csv(tmp_path, csv_rows(), encoding=encoding)
    assert detect_format(path) == "csv"
    r = analyse([path])
    assert r.files[0].format == "csv" and r.records == 11 and r.rasclient_events == 9
    attempts = {a.coid: a for a in r.attempts}
    a = attempts[COID_A.strip("{}")]
    assert (a.user, a.connection, a.outcome) == (ALICE, VPN, "failed")
    assert a.error is not None and a.error.code == 809
    assert a.started == "2024-03-15T08:00:00"  # local time, as the CSV carries it
    b = attempts[COID_B.strip("{}")]
    assert b.user == JOSE and b.error is not None and b.error.code == 0x80092013
    c = attempts[COID_C.strip("{}")]
    assert (c.user, c.connection, c.outcome) == (ZOE, VPN, "disconnected")
    d = attempts[COID_D.strip("{}")]
    assert d.connection == DEVICE and d.error is not None and d.error.code == 13868
    assert {x.code: x.count for x in r.summary.failures_by_code} == {809: 1, 0x80092013: 1, 13868: 1}
    (denied,) = r.nps.records
    assert (denied.result, denied.user, denied.reason_code) == ("denied", ALICE, 16)
    assert denied.connection_request_policy == "Use Windows authentication for all users"
    assert denied.network_policy is None and denied.eap_type is None
    assert denied.authentication_type == "PEAP"
    assert r.warnings == []


def test_csv_bad_rows_are_one_warning(tmp_path: Path) -> None:
    rows = [*csv_rows(), ["Error", "yesterday", "RasClient", "not-a-number", "None", "x"], ["Error", "late"]]
    rows.append(["Error", "sometime", "RasClient", "20227", "None", f"CoId={COID_E}: x"])
    r = analyse([write_csv(tmp_path, rows)])
    assert r.warnings == [
        "Application.csv: skipped 2 CSV row(s) without a numeric Event ID",
        "Application.csv: 1 row(s) with a date/time in an unknown layout",
    ]


# ---------------------------------------------------------------------------------------------------------
# EVTX (real public samples) and the evtx JSON shape
# ---------------------------------------------------------------------------------------------------------


def test_real_application_log_has_no_rasclient_events() -> None:
    report = analyse([sample("Application_no_crc32.evtx")])
    assert report.files[0].format == "evtx"
    assert report.records > 0 and report.rasclient_events == 0 and report.attempts == []
    assert report.warnings == []
    providers = {p.provider: p.count for p in report.providers}
    assert "RasClient" not in providers
    assert sum(providers.values()) == report.records
    assert providers["Microsoft-Windows-Security-SPP"] >= 1


def test_bad_chunk_is_one_warning_and_the_rest_is_read() -> None:
    report = analyse([sample("sample_with_a_bad_chunk_magic.evtx")])
    assert len(report.warnings) == 1
    assert "damaged" in report.warnings[0] and "\n" not in report.warnings[0]
    assert report.records > 200  # every readable chunk still read


def test_a_parser_that_spins_is_stopped_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 70 KB file the events_evtx fuzzer found kept the evtx package's native parser busy for minutes
    (`vpndoctor events` never returned). The parser now runs in a child that is killed when it sends
    nothing for EVTX_STALL_S: the run ends, with one warning line."""
    from vpndoctor.windows.events import evtx_reader

    monkeypatch.setattr(evtx_reader, "EVTX_STALL_S", 1.0)
    hostile = Path(__file__).resolve().parents[2] / "fuzz" / "crashes" / "events_evtx"
    t0 = time.monotonic()
    report = analyse([hostile / "hang-c53e732f1cde6dc2"])
    assert time.monotonic() - t0 < 8
    assert any("stopped making progress" in w and "\n" not in w for w in report.warnings)


def test_a_sound_file_read_through_the_child_is_unchanged() -> None:
    report = analyse([sample("Application_no_crc32.evtx")])
    assert report.warnings == [] and report.records > 0


def test_evtx_json_shape_of_a_rasclient_event() -> None:
    # The evtx package renders several unnamed <Data> as EventData.Data.#text = [...], named ones as keys.
    record = {
        "event_record_id": 77,
        "timestamp": "2024-03-15 08:00:31.000000 UTC",
        "data": (
            '{"Event":{"#attributes":{"xmlns":"' + NS + '"},"System":{"Provider":{"#attributes":{"Name":'
            '"RasClient"}},"EventID":{"#attributes":{"Qualifiers":0},"#text":20227},"Level":2,'
            '"TimeCreated":{"#attributes":{"SystemTime":"2024-03-15T08:00:31.1234567Z"}},"EventRecordID":77,'
            '"Computer":"PC-1"},"EventData":{"Data":{"#text":["' + COID_A + '","CORP\\\\alice","' + VPN + '",'
            '"809"]},"Binary":null}}}'
        ),
    }
    ev = _from_evtx_json(record)
    assert ev is not None
    assert (ev.provider, ev.event_id, ev.level, ev.record_id) == ("RasClient", 20227, 2, 77)
    assert ev.data == (COID_A, ALICE, VPN, "809")
    assert ev.time is not None and ev.time.isoformat() == "2024-03-15T08:00:31.123456+00:00"
    ras = ras_event(ev, 0)
    assert (ras.coid, ras.user, ras.connection, ras.code) == (COID_A.strip("{}"), ALICE, VPN, 809)
    named = {
        "data": '{"Event":{"System":{"Provider":{"#attributes":'
        '{"Name":"Microsoft-Windows-Security-Auditing"}},"EventID":6273},'
        '"EventData":{"FullyQualifiedSubjectUserName":"CORP\\\\bob","ReasonCode":48,'
        '"Reason":"The connection request did not match a configured network policy."}}}'
    }
    nps = _from_evtx_json(named)
    assert nps is not None and nps.get("ReasonCode") == "48"
    decision = nps_event(nps)
    assert (decision.user, decision.reason_code, decision.granted) == ("CORP\\bob", 48, False)


def test_legacy_20220_text_and_single_data_events() -> None:
    ev = RawEvent(
        provider="RasClient",
        event_id=20220,
        time=None,
        level=2,
        record_id=None,
        computer=None,
        message="The connection to vpn.contoso.com made using device WAN Miniport (IKEv2) was terminated. "
        "The error code returned on failure is 0x800B0109.",
    )
    ras = ras_event(ev, 0)
    assert ras.coid is None and ras.code == 0x800B0109 and ras.stage == "failed"
    other = RawEvent("RasClient", 20267, None, 4, None, None, data=(COID_A, ALICE))
    unknown = ras_event(other, 1)
    assert unknown.stage == "event 20267" and unknown.coid == COID_A.strip("{}")


# ---------------------------------------------------------------------------------------------------------
# Hostile input: times at the edge of the calendar, nesting, long markup, huge events
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("system_time", "expected"),
    [
        ("0001-01-01T00:00:00+05:00", "0001-01-01T00:00:00Z"),  # 0000-12-31T19:00Z: before datetime.min
        ("9999-12-31T23:59:59-05:00", "9999-12-31T23:59:59Z"),  # 10000-01-01T04:59:59Z: after datetime.max
        ("0001-01-01T00:00:00-05:00", "0001-01-01T05:00:00Z"),  # in range once in UTC: kept exactly
    ],
)
def test_system_time_beyond_the_utc_calendar_is_clamped(
    tmp_path: Path, system_time: str, expected: str
) -> None:
    ras = event_xml("RasClient", 20227, system_time, 1, (COID_A, ALICE, VPN, "809"), level=2)
    nps = event_xml(SECURITY_AUDITING, 6273, system_time, 2, named=nps_named(ALICE, 16, "mismatch"), level=0)
    other = event_xml("IKEEXT", 4285, system_time, 3, ("IKEEXT error",), level=2)
    report = analyse([write_xml(tmp_path, [ras, nps, other])])
    (attempt,) = report.attempts
    assert attempt.started == expected and attempt.outcome == "failed"
    assert report.summary.by_day[0].period == expected[:10]
    (record,) = report.nps.records
    assert record.time == expected and record.reason_code == 16
    assert [o.time for o in report.other_events] == [expected]
    # The same SystemTime from the evtx package's JSON.
    doc = {"Event": {"System": {"Provider": {"#attributes": {"Name": "RasClient"}}, "EventID": 20227}}}
    doc["Event"]["System"]["TimeCreated"] = {"#attributes": {"SystemTime": system_time}}
    ev = _from_evtx_json({"data": json.dumps(doc)})
    assert ev is not None and ev.time is not None and ev.time.tzinfo is not None
    assert ev.time.isoformat(timespec="seconds").replace("+00:00", "Z") == expected


def test_xml_nesting_deeper_than_the_limit_is_refused_with_flat_memory(tmp_path: Path) -> None:
    path = tmp_path / "deep.xml"
    path.write_text("<a>" * 1_000_000)  # 3 MB of unclosed elements
    tracemalloc.start()
    try:
        with pytest.raises(UsageError, match=f"nested deeper than {MAX_XML_DEPTH} elements") as exc:
            analyse([path])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "\n" not in str(exc.value)
    assert peak < 8 * 1024 * 1024, peak  # the old reader held every open element: 270 MB here


def test_xml_depth_limit_counts_elements_from_the_outermost(tmp_path: Path) -> None:
    # An event's <Data> is 3 below <Event>: under 61 wrappers it sits at depth 64, under 62 at 65.
    event = scenario_events()[0]
    ok, deep = tmp_path / "ok.xml", tmp_path / "deep.xml"
    ok.write_text("<w>" * (MAX_XML_DEPTH - 3) + event + "</w>" * (MAX_XML_DEPTH - 3))
    deep.write_text("<w>" * (MAX_XML_DEPTH - 2) + event + "</w>" * (MAX_XML_DEPTH - 2))
    assert analyse([ok]).rasclient_events == 1
    with pytest.raises(UsageError, match="nested deeper than"):
        analyse([deep])


def test_xml_memory_is_flat_for_elements_outside_events(tmp_path: Path) -> None:
    # Elements that are not events (wrappers, junk siblings) used to stay attached to the tree for good.
    def peak(n: int) -> int:
        path = tmp_path / f"siblings{n}.xml"
        path.write_text("<x>" + "<y a='1'/>" * n + "</x>" + "<z/>" * n + scenario_events()[0])
        tracemalloc.start()
        try:
            fmt, records = read_file(path)
            count = sum(1 for _ in records)
            _, top = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert fmt == "xml" and count == 1
        return top

    small, large = peak(5_000), peak(100_000)
    assert large < small * 2 + 256 * 1024, (small, large)


@pytest.mark.parametrize("where", ["attribute", "tag name", "comment", "processing instruction"])
def test_xml_markup_longer_than_the_limit_is_refused(tmp_path: Path, where: str) -> None:
    long = "v>" * (MAX_XML_MARKUP_CHARS // 2 + 1)  # a '>' inside a quoted value ends nothing
    event = scenario_events()[0]
    markup = {
        "attribute": f'<Event xmlns="{NS}"><System><Provider Name="{long}"/></System></Event>',
        "tag name": f"<E{'x' * (MAX_XML_MARKUP_CHARS + 1)}/>",
        "comment": f"<!-- {long} -->",
        "processing instruction": f"<?pi {long}?>",
    }[where]
    path = tmp_path / "long.xml"
    path.write_text(event + "\r\n" + markup + "\r\n" + event)
    with pytest.raises(UsageError, match=r"XML markup \(a tag, .*\) longer than 1 MiB at line 2") as exc:
        analyse([path])
    assert "\n" not in str(exc.value)


def test_xml_long_attribute_under_the_limit_is_read_whole(tmp_path: Path) -> None:
    # Half the limit: written out, every '>' of it becomes "&gt;".
    name = ('say "x > y" ' * (MAX_XML_MARKUP_CHARS // 12))[: MAX_XML_MARKUP_CHARS // 2]
    event = event_xml("RasClient", 20221, "2024-03-15T08:00:00Z", 1, (COID_A, ALICE), named=((name, "v"),))
    path = write_xml(tmp_path, [scenario_events()[0], event, scenario_events()[1]])
    fmt, records = read_file(path)
    events = [r for r in records if isinstance(r, RawEvent)]
    assert fmt == "xml" and len(events) == 3
    assert events[1].named == ((name, "v"),) and events[1].data == (COID_A, ALICE)


@pytest.mark.parametrize("read_chars", [1, 2, 3, 5, 7, 16 * 1024])
def test_xml_markup_split_at_every_read_boundary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_chars: int
) -> None:
    # The reader hands the parser whole tags, comments and PIs: wherever a read of the file ends, a quoted
    # '>', '<' in a comment, '-->' look-alikes and CDATA must neither end nor start markup early.
    monkeypatch.setattr(_RootedXml, "read_chars", read_chars)
    tricky = (
        "<!-- a <b> - -> c ->--><?pi a > b ? > c?>"
        '<Event xmlns="' + NS + '"><System><Provider Name=\'R"a>s\' Guid="{x>y}"/>'
        "<EventID>20221</EventID><TimeCreated SystemTime='2024-03-15T08:00:00Z'/></System>"
        '<EventData><Data><![CDATA[a<b>]]> ]]&gt; c</Data><Data Name="q\'>">&lt;v&gt;</Data></EventData>'
        "</Event>"
    )
    path = tmp_path / "split.xml"
    path.write_text((tricky + "\r\n" + "<!---->") * 20)  # past the first read (4 KB)
    fmt, records = read_file(path)
    events = [r for r in records if isinstance(r, RawEvent)]
    assert fmt == "xml" and len(events) == 20
    for event in events:
        assert event.provider == 'R"a>s' and event.data == ("a<b> ]]> c",)
        assert event.named == (("q'>", "<v>"),)


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("elements in one event", f"more than {MAX_XML_EVENT_ELEMENTS} elements in one <Event>"),
        ("text in one event", "more than 4 MiB in one <Event> or between two tags"),
        ("text between events", "more than 4 MiB in one <Event> or between two tags"),
    ],
)
def test_xml_event_over_the_budget_is_refused(tmp_path: Path, where: str, message: str) -> None:
    event = scenario_events()[0]
    head, tail = event.split("</EventData>")
    text = "t" * (MAX_XML_EVENT_CHARS + 64 * 1024)  # measured to within one read of the file (16 KB)
    big = {
        "elements in one event": head + "<Data/>" * (MAX_XML_EVENT_ELEMENTS + 1) + "</EventData>" + tail,
        "text in one event": head + "<Data>" + text + "</Data></EventData>" + tail,
        "text between events": text,
    }[where]
    path = tmp_path / "big.xml"
    path.write_text(event + big + event)
    tracemalloc.start()
    try:
        with pytest.raises(UsageError, match=message) as exc:
            analyse([path])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "\n" not in str(exc.value)
    assert peak < 64 * 1024 * 1024, peak


def test_csv_line_longer_than_the_limit_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path, csv_rows())
    with path.open("a", encoding="utf-8") as fh:
        fh.write("Error," + "x" * (MAX_CSV_LINE_CHARS + 1) + "\r\n")
    with pytest.raises(UsageError, match="CSV line longer than") as exc:
        analyse([path])
    assert "\n" not in str(exc.value)


def test_fifo_without_a_writer_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    # Opened in a thread so that the old blocking open fails this test instead of hanging it.
    outcome: list[BaseException | None] = []
    worker = threading.Thread(target=lambda: outcome.append(_analyse_error(fifo)), daemon=True)
    worker.start()
    worker.join(20)
    if worker.is_alive():
        with open(fifo, "wb"):  # release the reader: opening the FIFO for writing unblocks it
            pass
        pytest.fail("reading a FIFO without a writer blocked")
    (error,) = outcome
    assert isinstance(error, UsageError) and "no writer" in str(error) and "\n" not in str(error)


def _analyse_error(path: Path) -> BaseException | None:
    try:
        analyse([path])
    except BaseException as exc:
        return exc
    return None


def test_terminal_is_refused(tmp_path: Path) -> None:
    try:
        controller, terminal = os.openpty()
    except OSError as exc:
        pytest.skip(f"no pseudo-terminal here ({exc.strerror})")
    try:
        outcome: list[BaseException | None] = []
        worker = threading.Thread(
            target=lambda: outcome.append(_analyse_error(Path(os.ttyname(terminal)))), daemon=True
        )
        worker.start()
        worker.join(20)
        if worker.is_alive():
            os.write(controller, b"\x04")  # end of file for the reader that blocked
            worker.join(5)
            pytest.fail("reading a terminal blocked")
    finally:
        os.close(controller)
        os.close(terminal)
    (error,) = outcome
    assert isinstance(error, UsageError) and "terminal" in str(error) and "\n" not in str(error)


def test_pipe_is_read_once(tmp_path: Path) -> None:
    # /dev/fd/N of a pipe cannot be reopened at its start: the sniffer's bytes are chained back in front.
    data = codecs.BOM_UTF16_LE + wevtutil_text(scenario_events()).encode("utf-16-le")
    read_fd, write_fd = os.pipe()
    writer = threading.Thread(target=_write_and_close, args=(write_fd, data), daemon=True)
    writer.start()
    try:
        report = analyse([Path(f"/dev/fd/{read_fd}")])
    finally:
        writer.join(10)
        os.close(read_fd)
    assert report.files[0].format == "xml" and report.summary.attempts == 6


def _write_and_close(fd: int, data: bytes) -> None:
    with open(fd, "wb") as fh, contextlib.suppress(BrokenPipeError):
        fh.write(data)
