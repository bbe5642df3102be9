"""The capture report (reader, reassembly, NAT-T framing, conversations: the whole pipeline) against
independent decoders on every public capture: tshark's JSON dissection and tcpdump's `.out` files. Compared
per message in capture order: exchange, message id, I and R flags, SPIs, UDP port, size, payload list and
notify types. (tests/ike/test_captures.py holds the same oracles for the codec alone, byte by byte.)

tshark runs with its default dissectors: on UDP 4500 its udpencap dissector strips the non-ESP marker before
ISAKMP, as we do. Forcing `-d udp.port==4500,isakmp` instead makes it read the marker as an IKE header (and
ESP as ISAKMP), which no longer describes the wire: the forced decode is used only to show that difference.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from vpndoctor.capture.analysis import analyse
from vpndoctor.capture.model import CaptureReport, IkeMessageInfo
from vpndoctor.ike.constants import ExchangeType, NotifyType, PayloadType, name_of

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = Path(os.environ.get("VPNDOCTOR_SHARED", ROOT.parent / "shared")) / "captures" / "public"
CAPTURES = sorted(p.name for p in PUBLIC.glob("*.pcap*")) if PUBLIC.is_dir() else []


def public(name: str) -> Path:
    path = PUBLIC / name
    if not path.exists():
        pytest.skip(f"shared captures not found at {PUBLIC}")
    return path


def tshark() -> str:
    path = shutil.which("tshark")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("tshark is not installed")
        pytest.skip("tshark is not installed")
    return path


def flat(report: CaptureReport) -> list[tuple[IkeMessageInfo, str, str]]:
    """(message, SPIi, SPIr of its conversation) in capture order."""
    out = [(m, c.spi_i, c.spi_r) for c in report.conversations for m in c.messages]
    return sorted(out, key=lambda item: item[0].t)


def _values(tree: Any, key: str) -> list[str]:
    found: list[str] = []
    if isinstance(tree, dict):
        for k, v in tree.items():
            if k == key:
                found.extend(v if isinstance(v, list) else [v])
            else:
                found.extend(_values(v, key))
    elif isinstance(tree, list):
        for item in tree:
            found.extend(_values(item, key))
    return found


def tshark_ikev2(path: Path, *options: str) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [tshark(), "-r", str(path), "-T", "json", "--no-duplicate-keys", *options],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = []
    for packet in json.loads(proc.stdout):
        layers = packet["_source"]["layers"]
        isakmp = layers.get("isakmp")
        if not isinstance(isakmp, dict) or "isakmp.exchangetype" not in isakmp:
            continue
        if int(isakmp["isakmp.version"], 16) >> 4 != 2:
            continue
        udp = layers["udp"]
        flags = int(isakmp["isakmp.flags"], 16)
        marker = 4 if "udpencap" in layers else 0
        out.append(
            {
                "exchange": name_of(ExchangeType, int(isakmp["isakmp.exchangetype"])),
                "message_id": int(isakmp["isakmp.messageid"], 16),
                "initiator": bool(flags & 0x08),
                "response": bool(flags & 0x20),
                "spi_i": isakmp["isakmp.ispi"].replace(":", ""),
                "spi_r": isakmp["isakmp.rspi"].replace(":", ""),
                "port": 4500 if 4500 in (int(udp["udp.srcport"]), int(udp["udp.dstport"])) else 500,
                "size": int(udp["udp.length"]) - 8 - marker,
                # tshark also files SA proposals (2) and transforms (3) under typepayload
                "payloads": [
                    name_of(PayloadType, int(v))
                    for v in _values(isakmp, "isakmp.typepayload")
                    if int(v) >= 33
                ],
                "notifies": [name_of(NotifyType, int(v)) for v in _values(isakmp, "isakmp.notify.msgtype")],
            }
        )
    return out


@pytest.mark.parametrize("name", CAPTURES or ["(no captures)"])
def test_report_agrees_with_tshark(name: str) -> None:
    path = public(name)
    report = analyse(path, name=name)
    ours = flat(report)
    theirs = tshark_ikev2(path)
    assert len(ours) == len(theirs) == report.ike_messages
    for (m, spi_i, spi_r), t in zip(ours, theirs, strict=True):
        header = (m.exchange, m.message_id, m.initiator, m.response, m.port, m.size)
        assert header == (t["exchange"], t["message_id"], t["initiator"], t["response"], t["port"], t["size"])
        assert spi_i == t["spi_i"]
        assert t["spi_r"] in (spi_r, "0" * 16)  # the conversation keeps the responder SPI once it is known
        if m.payloads:  # a message we could not decode (ikev2-id-short) keeps only its header facts
            assert m.payloads == t["payloads"], (m, t)
            assert m.notifies == t["notifies"], (m, t)
        else:
            assert report.warnings, "an undecodable message is reported"


def test_the_comparison_covers_flags_payloads_and_notifies() -> None:
    """Not vacuous: the public captures exercise both flags, every exchange, NAT-T and notifies."""
    seen: dict[str, set[Any]] = {
        "exchange": set(),
        "flags": set(),
        "port": set(),
        "notify": set(),
        "payload": set(),
    }
    for name in CAPTURES:
        for m, _, _ in flat(analyse(public(name), name=name)):
            seen["exchange"].add(m.exchange)
            seen["flags"].add((m.initiator, m.response))
            seen["port"].add(m.port)
            seen["notify"].update(m.notifies)
            seen["payload"].update(m.payloads)
    assert seen["exchange"] >= {"IKE_SA_INIT", "IKE_AUTH", "CREATE_CHILD_SA", "INFORMATIONAL"}
    assert seen["flags"] == {(True, False), (False, True), (True, True), (False, False)}
    assert seen["port"] == {500, 4500}
    assert {"COOKIE", "NAT_DETECTION_SOURCE_IP", "NAT_DETECTION_DESTINATION_IP"} <= seen["notify"]
    assert {"SA", "KE", "NONCE", "NOTIFY", "SK", "VENDOR_ID"} <= seen["payload"]


def test_forcing_isakmp_on_4500_misreads_the_marker() -> None:
    """Why the oracle uses tshark's default decode: forced ISAKMP on UDP 4500 disagrees with the wire."""
    path = public("ikev2_nat_t.pcapng")
    default, forced = tshark_ikev2(path), tshark_ikev2(path, "-d", "udp.port==4500,isakmp")
    on_4500 = [t for t in default if t["port"] == 4500]
    assert on_4500 and len(forced) < len(default)
    esp = public("espudp1.pcap")
    assert tshark_ikev2(esp) == [] and analyse(esp, name="espudp1").ike_messages == 0


# --- tcpdump ----------------------------------------------------------------------------------------------

_TCPDUMP_EXCHANGE = {
    "ikev2_init": "IKE_SA_INIT",
    "ikev2_auth": "IKE_AUTH",
    "child_sa": "CREATE_CHILD_SA",
    "inf2": "INFORMATIONAL",
}
_TCPDUMP_PAYLOAD = {
    "sa": "SA",
    "v2ke": "KE",
    "nonce": "NONCE",
    "n": "NOTIFY",
    "v2e": "SK",
    "v2vid": "VENDOR_ID",
    "v2IDi": "IDi",
    "v2IDr": "IDr",
    "v2cert": "CERT",
    "v2cr": "CERTREQ",
    "v2auth": "AUTH",
    "v2TS": "TSi",
    "v2cp": "CP",
    "v2eap": "EAP",
}


def tcpdump_messages(text: str) -> list[dict[str, Any]]:
    """Per frame: exchange, message id, flags, SPIs, ports, top-level payloads and notify types."""
    out: list[dict[str, Any]] = []
    for line in text.splitlines():
        head = re.search(
            r"\.(\d+) > [\d.]+\.(\d+): .*isakmp 2\.0 msgid ([0-9a-f]{8})"
            r"(?: cookie ([0-9a-f]{16})->([0-9a-f]{16}))?: \S+\s+(\w+)\[(\w*)\]",
            line,
        )
        if head:
            sport, dport, msgid, spi_i, spi_r, exchange, flags = head.groups()
            out.append(
                {
                    "exchange": _TCPDUMP_EXCHANGE[exchange],
                    "message_id": int(msgid, 16),
                    "initiator": "I" in flags,
                    "response": "R" in flags,
                    "spi_i": spi_i,  # None when tcpdump ran without -v
                    "spi_r": spi_r,
                    "port": 4500 if "4500" in (sport, dport) else 500,
                    "payloads": [],
                    "notifies": [],
                }
            )
            continue
        payload = re.match(r" {4}\((\w+)(?:\[C\])?:(.*)", line)  # top level only: inner ones sit deeper
        if payload and out:
            out[-1]["payloads"].append(_TCPDUMP_PAYLOAD[payload.group(1)])
            notify = re.search(r"type=(\d+)\(", payload.group(2))
            if payload.group(1) == "n" and notify:
                out[-1]["notifies"].append(name_of(NotifyType, int(notify.group(1))))
    return out


@pytest.mark.parametrize(
    ("out", "pcap"),
    [
        ("ikev2four.out", "ikev2four.pcap"),
        ("ikev2fourv.out", "ikev2four.pcap"),
        ("ikev2fourv4.out", "ikev2four.pcap"),
        ("ikev2pI2.out", "ikev2pI2.pcap"),
        ("ikev2-id-normal.out", "ikev2-id-normal.pcap"),
    ],
)
def test_report_agrees_with_tcpdump(out: str, pcap: str) -> None:
    report = analyse(public(pcap), name=pcap)
    theirs = tcpdump_messages(public(out).read_text())
    ours = flat(report)
    assert len(ours) == len(theirs) == report.ike_messages > 0
    for (m, spi_i, spi_r), t in zip(ours, theirs, strict=True):
        assert (m.exchange, m.message_id, m.initiator, m.response, m.port) == (
            t["exchange"],
            t["message_id"],
            t["initiator"],
            t["response"],
            t["port"],
        )
        if t["spi_i"] is not None:
            assert spi_i == t["spi_i"] and t["spi_r"] in (spi_r, "0" * 16)
        if not m.payloads:  # ikev2-id-normal: trailing bytes after the last payload; tcpdump reads on
            assert any("malformed IKEv2 message" in w for w in report.warnings), report.warnings
            continue
        assert m.payloads == t["payloads"], (m, t)
        assert m.notifies == t["notifies"], (m, t)


def test_espudp1_esp_counted_like_tshark() -> None:
    path = public("espudp1.pcap")
    proc = subprocess.run(
        [tshark(), "-r", str(path), "-T", "fields", "-e", "esp.spi"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    spis = [int(s, 16) for s in proc.stdout.split() if s]
    assert spis
    report = analyse(path, name="espudp1")
    esp = next(f for f in report.findings if f.id == "capture.esp.one-way")
    counted = {int(f["spi"], 16): f["packets"] for f in esp.evidence["esp_flows"]}
    assert counted == {spi: spis.count(spi) for spi in set(spis)}
