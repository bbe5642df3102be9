"""`vpndoctor capture` on real captures of the lab: tcpdump in the client (and gateway) namespaces while the
lab's strongSwan client dials, for the healthy, error-809-fragments, block-udp-4500 and lb-per-service
scenarios. Each capture must yield the expected findings, and our decoding must agree with tshark's.

The healthy run also proves decryption end to end: the client charon logs its IKE SA keys (`ike = 4`), from
which a Wireshark `ikev2_decryption_table` is written; our decrypted payloads must match what charon says it
generated and parsed, and what tshark decrypts with the same table.
"""

from __future__ import annotations

import json
import re
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.helpers import need, scenarios
from vpndoctor.checks import ids
from vpndoctor.ike.constants import NotifyType, PayloadType, name_of
from vpndoctor.ike.message import _SHORT_NOTIFY
from vpndoctor.lab import strongswan, topology
from vpndoctor.lab.client import LabClient
from vpndoctor.lab.handle import Lab
from vpndoctor.lab.runner import _run

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schema" / "capture.json").read_text())
FILTER = "udp port 500 or udp port 4500 or (ip[6:2] & 0x1fff != 0)"


# --- capturing -------------------------------------------------------------------------------------------


@contextmanager
def tcpdump(lab: Lab, role: str, pcap: Path) -> Iterator[Path]:
    """tcpdump on eth0 of one lab host, writing `pcap`, running once it says it listens; stopped by pid."""
    need("tcpdump")
    proc = subprocess.Popen(
        # --immediate-mode: without it packets wait in the kernel ring for a block timeout, and stopping
        # tcpdump inside that window loses them
        [
            "ip",
            "netns",
            "exec",
            lab.ns(role),
            "tcpdump",
            "--immediate-mode",
            "-i",
            "eth0",
            "-U",
            "-w",
            str(pcap),
            FILTER,
        ],  # fmt: skip
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        ready, _, _ = select.select([proc.stderr], [], [], 15)
        line = proc.stderr.readline() if ready else ""
        assert "listening on" in line, f"tcpdump in {role} did not start: {line!r}"
        yield pcap
        time.sleep(0.5)  # let the last datagrams reach the file
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def keyed_client(lab: Lab, proposals: str = "default") -> LabClient:
    """The lab's strongSwan client, logging its IKE keys (charon's ike log level 4) to charon.log."""
    client = LabClient(lab.prefix, proposals=proposals).start()
    conf = client.workdir / "strongswan.conf"
    text = conf.read_text()
    assert "      default = 1\n" in text
    conf.write_text(
        text.replace("      default = 1\n", "      default = 1\n      ike = 4\n      enc = 2\n", 1)
    )
    proc = _run(strongswan.swanctl_command(client.workdir, "--reload-settings"), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return client


def capture_json(pcap: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "vpndoctor", "capture", str(pcap), "--json", *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    jsonschema.validate(report, SCHEMA)
    assert [f["id"] for f in report["findings"]] == list(ids.CAPTURE_ALL)
    return proc.returncode, report, proc.stderr


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {f["id"]: f["status"] for f in report["findings"]}


def messages(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for c in report["conversations"] for m in c["messages"]]


# --- tshark ----------------------------------------------------------------------------------------------


def tshark_packets(pcap: Path, *options: str) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [need("tshark"), "-r", str(pcap), "-T", "json", "--no-duplicate-keys",
         *options],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return [p["_source"]["layers"] for p in json.loads(proc.stdout)]


def _values(tree: Any, key: str) -> list[str]:
    """Every value of `key` in the dissection tree, in document order (lists flattened)."""
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


def tshark_ike(pcap: Path, *options: str) -> list[dict[str, Any]]:
    """Per IKEv2 message (reassembled IP datagrams only): header facts, payload types and notify types."""
    out = []
    for layers in tshark_packets(pcap, *options):
        isakmp = layers.get("isakmp")
        if not isinstance(isakmp, dict) or "isakmp.exchangetype" not in isakmp:
            continue
        flags = int(isakmp["isakmp.flags"], 16)
        out.append(
            {
                "exchange": int(isakmp["isakmp.exchangetype"]),
                "message_id": int(isakmp["isakmp.messageid"], 16),
                "initiator": bool(flags & 0x08),
                "response": bool(flags & 0x20),
                "spi_i": isakmp["isakmp.ispi"].replace(":", ""),
                "spi_r": isakmp["isakmp.rspi"].replace(":", ""),
                # tshark also files SA proposals (2) and transforms (3) under typepayload
                "payloads": [int(v) for v in _values(isakmp, "isakmp.typepayload") if int(v) >= 33],
                "notifies": [int(v) for v in _values(isakmp, "isakmp.notify.msgtype")],
                "icv_bad": "IKEv2 Integrity Checksum Data is incorrect" in json.dumps(isakmp),
            }
        )
    return out


_EXCHANGES = {34: "IKE_SA_INIT", 35: "IKE_AUTH", 36: "CREATE_CHILD_SA", 37: "INFORMATIONAL"}
_NOTIFY_NUMBER = {name_of(NotifyType, n): int(n) for n in NotifyType}
_PAYLOAD_NUMBER = {name_of(PayloadType, n): int(n) for n in PayloadType}


def assert_tshark_agrees(pcap: Path, report: dict[str, Any], *options: str, decrypted: bool = False) -> int:
    """Ours and tshark's, message by message in capture order: exchange, id, flags, SPI, payload types
    (with the decrypted ones appended when `decrypted`) and notify types. Returns the count compared."""
    ours = sorted(messages(report), key=lambda m: m["t"])
    theirs = tshark_ike(pcap, *options)
    assert len(ours) == len(theirs), ([m["exchange"] for m in ours], theirs)
    for m, t in zip(ours, theirs, strict=True):
        assert (_EXCHANGES.get(t["exchange"]), t["message_id"], t["initiator"], t["response"]) == (
            m["exchange"], m["message_id"], m["initiator"], m["response"]
        ), (m, t)  # fmt: skip
        payloads = [_PAYLOAD_NUMBER[p] for p in m["payloads"]]
        notifies = [_NOTIFY_NUMBER[n] for n in m["notifies"]]
        if decrypted and m["decrypted"] is not None:
            payloads += [_PAYLOAD_NUMBER[p] for p in m["decrypted"]["payloads"]]
            notifies += [_NOTIFY_NUMBER[n] for n in m["decrypted"]["notifies"]]
            assert t["icv_bad"] is (m["decrypted"]["integrity"] != "verified"), (m, t)
        assert t["payloads"] == payloads, (m, t)
        assert t["notifies"] == notifies, (m, t)
    return len(ours)


# --- strongSwan's own account ----------------------------------------------------------------------------


_WIRESHARK_ENCR = {
    "3DES_CBC": "3DES [RFC2451]",
    "AES_CBC_128": "AES-CBC-128 [RFC3602]",
    "AES_CBC_192": "AES-CBC-192 [RFC3602]",
    "AES_CBC_256": "AES-CBC-256 [RFC3602]",
    "AES_GCM_16_128": "AES-GCM-128 with 16 octet ICV [RFC5282]",
    "AES_GCM_16_256": "AES-GCM-256 with 16 octet ICV [RFC5282]",
}
_WIRESHARK_INTEG = {
    "HMAC_SHA1_96": "HMAC_SHA1_96 [RFC2404]",
    "HMAC_SHA2_256_128": "HMAC_SHA2_256_128 [RFC4868]",
    "HMAC_SHA2_384_192": "HMAC_SHA2_384_192 [RFC4868]",
    "HMAC_SHA2_512_256": "HMAC_SHA2_512_256 [RFC4868]",
}


def charon_keys(log: str) -> tuple[dict[str, str], str, str]:
    """The last IKE SA's SK_ei/er/ai/ar (hex) and its algorithms, as charon logged them."""
    lines = log.splitlines()
    keys: dict[str, str] = {}
    for i, line in enumerate(lines):
        m = re.search(r"(Sk_[ae][ir]) secret => \d+ bytes", line)
        if m is None:
            continue
        hexdump = ""
        for following in lines[i + 1 :]:
            d = re.search(r"\]\s+<[^>]*>\s+\d+: ((?:[0-9A-F]{2} )+)", following)
            if d is None:
                break
            hexdump += d.group(1).replace(" ", "")
        keys[m.group(1)] = hexdump.lower()
    proposals = re.findall(r"selected proposal: IKE:(\S+)", log)
    assert keys and proposals, "charon logged no IKE keys"
    encr, second = proposals[-1].split("/")[:2]
    if encr.startswith("AES_GCM"):  # AEAD: no integrity transform, no SK_a
        keys.setdefault("Sk_ai", "")
        keys.setdefault("Sk_ar", "")
        return keys, _WIRESHARK_ENCR[encr], "NONE [RFC4306]"
    return keys, _WIRESHARK_ENCR[encr], _WIRESHARK_INTEG[second]


_CHARON_PAYLOAD = {
    "SA": "SA", "KE": "KE", "No": "NONCE", "IDi": "IDi", "IDr": "IDr", "CERT": "CERT", "CERTREQ": "CERTREQ",
    "AUTH": "AUTH", "D": "DELETE", "V": "VENDOR_ID", "TSi": "TSi", "TSr": "TSr",
}  # fmt: skip
_CHARON_NOTIFY = {short: name_of(NotifyType, n) for n, short in _SHORT_NOTIFY.items()}


def charon_messages(log: str) -> list[tuple[str, str, int, list[str], list[str]]]:
    """(generated|parsed, exchange, message id, payload types, notify names) for each whole message charon
    logged; fragments (EF) are left out, the reassembled message is what charon logs after them."""
    out = []
    for m in re.finditer(r"(generating|parsed) (\w+) (?:request|response) (\d+) \[ (.*?) \]", log):
        tokens = m.group(4).split()
        if any(t.startswith("EF(") for t in tokens):
            continue
        payloads, notifies = [], []
        for token in tokens:
            head = token.split("(")[0].split("/")[0]
            if head == "N":
                payloads.append("NOTIFY")
                notifies.append(_CHARON_NOTIFY[token[2:-1]])
            elif head in ("CPRQ", "CPRP", "CPS", "CPA"):
                payloads.append("CP")
            elif head == "EAP":
                payloads.append("EAP")
            else:
                payloads.append(_CHARON_PAYLOAD[head])
        out.append((m.group(1), m.group(2), int(m.group(3)), payloads, notifies))
    return out


# --- healthy: decryption, tshark, strongSwan -------------------------------------------------------------


@scenarios("healthy")
@pytest.mark.parametrize(
    "proposals", ["default", "aes256gcm16-prfsha384-ecp384", "3des-sha1-modp1024"], ids=["cbc", "gcm", "3des"]
)
def test_healthy_capture_decrypts_and_agrees_with_strongswan_and_tshark(
    lab: Lab, proposals: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    work = tmp_path_factory.mktemp("capture-healthy")
    work.chmod(0o755)
    client = keyed_client(lab, proposals)
    try:
        with tcpdump(lab, "client", work / "healthy.pcap") as pcap:
            result = client.initiate()
        log = client.log()
    finally:
        client.stop()
    assert result.established, result.output

    # the key table, in Wireshark's format, for the IKE SA the capture shows (SPIs as tshark reads them)
    keys, encr, integ = charon_keys(log)
    expected_encr = {
        "default": "AES-CBC-256",
        "aes256gcm16-prfsha384-ecp384": "AES-GCM-256",
        "3des-sha1-modp1024": "3DES",
    }
    assert encr.startswith(expected_encr[proposals]), (proposals, encr)
    auth = [t for t in tshark_ike(pcap) if _EXCHANGES.get(t["exchange"]) == "IKE_AUTH"]
    assert auth
    spi_i, spi_r = auth[0]["spi_i"], auth[0]["spi_r"]
    row = (
        f'{spi_i},{spi_r},{keys["Sk_ei"]},{keys["Sk_er"]},"{encr}",{keys["Sk_ai"]},{keys["Sk_ar"]},"{integ}"'
    )
    table = work / "ikev2_decryption_table"
    table.write_text("# written by the lab test from charon's log\n" + row + "\n")

    _, report, _ = capture_json(pcap, "--keys", str(table))
    st = statuses(report)
    assert "fail" not in st.values(), report["findings"]
    assert st[ids.CAPTURE_IKE_FRAGMENTATION_NOT_NEGOTIATED] == "pass"
    assert st[ids.CAPTURE_IKE_NO_RESPONSE] == "pass"
    assert report["verdict"]["status"] == "healthy"
    assert report["warnings"] == []
    (conv,) = report["conversations"]
    assert conv["spi_i"] == spi_i and conv["spi_r"] == spi_r

    # every encrypted message decrypted and authenticated; the SKF pieces reassembled
    encrypted = [m for m in conv["messages"] if {"SK", "SKF"} & set(m["payloads"])]
    assert encrypted and all(m["decrypted"]["integrity"] == "verified" for m in encrypted)
    fragments = [m for m in encrypted if m["fragment"]]
    assert fragments, "the lab server fragments its certificate-bearing IKE_AUTH answer (RFC 7383)"
    whole = [m for m in encrypted if m["decrypted"]["payloads"]]
    assert any(m["decrypted"]["fragments"] == len(fragments) for m in whole)

    # ... and what came out is what charon says it sent and received, message by message
    said = {
        (exchange, mid, kind == "generating"): (p, n) for kind, exchange, mid, p, n in charon_messages(log)
    }
    compared = set()
    for m in whole:
        key = (m["exchange"], m["message_id"], m["initiator"])  # generated by charon = sent by the client
        assert (m["decrypted"]["payloads"], m["decrypted"]["notifies"]) == said[key], m
        compared.add(key)
    assert {k for k in said if k[0] == "IKE_AUTH"} <= compared, said

    # the facts an engineer reads: who, which certificate, how
    items = [i for m in whole for i in m["decrypted"]["items"]]
    assert {"type": "IDi", "identity": "fqdn:alice"}.items() <= next(
        i for i in items if i["type"] == "IDi"
    ).items()
    cert = next(i for i in items if i["type"] == "CERT")
    assert cert["subject"] == "CN=vpn.lab.test" and cert["issuer"] == "CN=vpndoctor lab CA"
    assert {i["eap_type"] for i in items if i["type"] == "EAP"} >= {"IDENTITY", "MSCHAPV2"}
    assert any(i["eap_code"] == "SUCCESS" for i in items)
    assert {i["auth_method"] for i in items if i["type"] == "AUTH"} >= {"SHARED_KEY"}

    # tshark, given the same table, decrypts to the same payloads and finds every ICV correct
    n = assert_tshark_agrees(pcap, report, "-o", f"uat:ikev2_decryption_table:{row}", decrypted=True)
    assert n == len(conv["messages"])

    # the same keys as tcpdump -E lines (SHA-2 names are our extension of tcpdump's format)
    tcpdump_encr = {"3DES [RFC2451]": "3des"} | {f"AES-CBC-{b} [RFC3602]": f"aes{b}" for b in (128, 192, 256)}
    tcpdump_integ = {"HMAC_SHA1_96 [RFC2404]": "sha1", "HMAC_SHA2_256_128 [RFC4868]": "sha256"}
    if encr in tcpdump_encr and integ in tcpdump_integ:  # tcpdump's format has no AEAD
        e, i = tcpdump_encr[encr], tcpdump_integ[integ]
        tcpdump_keys = work / "tcpdump-secrets.txt"
        tcpdump_keys.write_text(
            f"ikev2 I 0x{spi_i} 0x{spi_r} {i}:0x{keys['Sk_ai']} {e}:0x{keys['Sk_ei']}\n"
            f"ikev2 R 0x{spi_i} 0x{spi_r} {i}:0x{keys['Sk_ar']} {e}:0x{keys['Sk_er']}\n"
        )
        _, again, _ = capture_json(pcap, "--keys", str(tcpdump_keys))
        assert again["conversations"] == report["conversations"]

    # wrong keys: nothing readable, said so, and the verdict does not change
    bad = work / "wrong-keys"
    bad.write_text(row.replace(keys["Sk_ei"], "00" * (len(keys["Sk_ei"]) // 2)) + "\n")
    _, wrong, _ = capture_json(pcap, "--keys", str(bad))
    from_client = [m for m in messages(wrong) if m["decrypted"] and m["initiator"]]
    assert from_client and all(m["decrypted"]["integrity"] == "failed" for m in from_client)
    assert any("could not be decrypted" in w for w in wrong["warnings"])
    assert wrong["verdict"] == report["verdict"]


# --- failures --------------------------------------------------------------------------------------------


def dial_and_capture(
    lab: Lab, work: Path, roles: tuple[str, ...] = ("client",)
) -> tuple[bool, dict[str, Path]]:
    client = LabClient(lab.prefix).start()
    pcaps = {role: work / f"{role}.pcap" for role in roles}
    try:
        with contextlib_nested(lab, pcaps):
            result = client.initiate(timeout_s=15)
    finally:
        client.stop()
    return result.established, pcaps


@contextmanager
def contextlib_nested(lab: Lab, pcaps: dict[str, Path]) -> Iterator[None]:
    if not pcaps:
        yield
        return
    (role, pcap), *rest = pcaps.items()
    with tcpdump(lab, role, pcap), contextlib_nested(lab, dict(rest)):
        yield


@scenarios("error-809-fragments")
def test_error_809_seen_from_client_and_gateway(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> None:
    work = tmp_path_factory.mktemp("capture-809")
    work.chmod(0o755)
    established, pcaps = dial_and_capture(lab, work, ("client", "vpn1", "vpn2"))
    assert not established

    # The client sees IKE_AUTH retransmitted into silence, from a gateway that did not offer fragmentation:
    # fragmentation-not-negotiated is the root cause (809), "never answered" the symptom.
    _, report, _ = capture_json(pcaps["client"])
    st = statuses(report)
    assert st[ids.CAPTURE_IKE_FRAGMENTATION_NOT_NEGOTIATED] == "fail", report["findings"]
    assert st[ids.CAPTURE_IKE_NO_RESPONSE] == "fail"
    # 4500 may well be open: the answer's fragments were lost
    assert st[ids.CAPTURE_NATT_NO_4500_ANSWER] != "fail"
    assert report["verdict"]["root_causes"][0] == ids.CAPTURE_IKE_FRAGMENTATION_NOT_NEGOTIATED
    assert report["verdict"]["root_causes"][-1] == ids.CAPTURE_IKE_NO_RESPONSE
    fnn = next(f for f in report["findings"] if f["id"] == ids.CAPTURE_IKE_FRAGMENTATION_NOT_NEGOTIATED)
    assert fnn["error_codes"] == [809]
    auth = [m for m in messages(report) if m["exchange"] == "IKE_AUTH"]
    assert len(auth) >= 2 and not any(m["response"] for m in auth)
    assert all(m["retransmission"] for m in auth[1:])
    assert_tshark_agrees(pcaps["client"], report)

    # The gateway that got the client sees its own answer leave as IP fragments while the request keeps
    # coming back: capture.ike.fragmented-lost.
    gateway = [p for p in pcaps.values() if p != pcaps["client"] and p.stat().st_size > 24]
    reports = [capture_json(p)[1] for p in gateway]
    served = [r for r in reports if r["ike_messages"]]
    assert len(served) == 1, [r["ike_messages"] for r in reports]
    (server_view,) = served
    st = statuses(server_view)
    assert st[ids.CAPTURE_IKE_FRAGMENTED_LOST] == "fail", server_view["findings"]
    assert server_view["verdict"]["root_causes"][0] == ids.CAPTURE_IKE_FRAGMENTED_LOST
    lost = next(f for f in server_view["findings"] if f["id"] == ids.CAPTURE_IKE_FRAGMENTED_LOST)
    assert lost["error_codes"] == [809]
    assert any(r["fragmented_answer_resent"] for r in lost["evidence"]["requests"])
    answers = [m for m in messages(server_view) if m["exchange"] == "IKE_AUTH" and m["response"]]
    assert answers and all(m["ip_fragmented"] for m in answers)
    assert_tshark_agrees(gateway[reports.index(server_view)], server_view)


@scenarios("block-udp-4500")
def test_blocked_udp_4500(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> None:
    work = tmp_path_factory.mktemp("capture-4500")
    work.chmod(0o755)
    established, pcaps = dial_and_capture(lab, work)
    assert not established
    _, report, _ = capture_json(pcaps["client"])
    st = statuses(report)
    # Both fire: 4500 never answered after 500 was (the cause), so IKE_AUTH went unanswered (the symptom).
    assert st[ids.CAPTURE_NATT_NO_4500_ANSWER] == "fail", report["findings"]
    assert st[ids.CAPTURE_IKE_NO_RESPONSE] == "fail"
    # the gateway does fragment: no ambiguity
    assert st[ids.CAPTURE_IKE_FRAGMENTATION_NOT_NEGOTIATED] == "pass"
    assert report["verdict"]["root_causes"] == [ids.CAPTURE_NATT_NO_4500_ANSWER, ids.CAPTURE_IKE_NO_RESPONSE]
    on_4500 = [m for m in messages(report) if m["port"] == 4500]
    assert on_4500 and not any(m["response"] for m in on_4500)
    assert all(m["port"] == 500 for m in messages(report) if m["exchange"] == "IKE_SA_INIT")
    assert_tshark_agrees(pcaps["client"], report)


@scenarios("lb-per-service")
def test_lb_per_service_sends_4500_elsewhere(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The load balancer picks a backend per flow, so UDP 4500 may reach a backend that never saw the
    IKE_SA_INIT: that one drops IKE_AUTH for an unknown SA, and the client sees 500 answered, 4500 not.
    The coin is per flow: dial until the two flows land apart (flushing the LB's conntrack in between)."""
    need("conntrack")
    for attempt in range(8):
        work = tmp_path_factory.mktemp(f"capture-lb-{attempt}")
        work.chmod(0o755)
        lab.run("lb", "conntrack", "-F")
        established, pcaps = dial_and_capture(lab, work)
        flows = {
            f.vip_port: lab.backend_name(f.backend) for f in lab.flows("udp") if f.vip_port in (500, 4500)
        }
        if not established:
            break
        assert flows.get(500) == flows.get(4500), flows  # the same backend: the dial works
    else:
        pytest.fail("8 dials and the load balancer never split 500 and 4500 (chance 2**-8 with a fair coin)")
    assert flows.get(500) != flows.get(4500), flows
    _, report, _ = capture_json(pcaps["client"])
    st = statuses(report)
    assert st[ids.CAPTURE_NATT_NO_4500_ANSWER] == "fail", report["findings"]
    assert report["verdict"]["root_causes"][0] == ids.CAPTURE_NATT_NO_4500_ANSWER
    assert st[ids.CAPTURE_IKE_FRAGMENTATION_NOT_NEGOTIATED] == "pass"
    assert_tshark_agrees(pcaps["client"], report)


@scenarios("healthy")
def test_html_report_of_a_lab_capture(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> None:
    work = tmp_path_factory.mktemp("capture-html")
    work.chmod(0o755)
    established, pcaps = dial_and_capture(lab, work)
    assert established
    html = work / "report.html"
    _, report, _ = capture_json(pcaps["client"], "--html", str(html))
    page = html.read_text()
    assert page.count('class="arrow"') == len(messages(report)) > 0
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page
    if shutil.which("chromium") is None:
        return
    from tests.capture.test_capture_html import render_in_chromium

    dom, console = render_in_chromium(html)
    assert console == []
    assert f'data-arrows="{len(messages(report))}"' in dom


# --- vpndoctor's own initiator as the client -------------------------------------------------------------


@scenarios("healthy", "error-809-fragments")
def test_own_initiator_transcript_matches_the_capture(
    lab: Lab, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`vpndoctor ike` lists every datagram it sent and received; the capture of the same run must show the
    same datagrams (direction, port, size with the NAT-T marker) and the scenario's findings."""
    work = tmp_path_factory.mktemp(f"capture-ike-{lab.scenario.name}")
    work.chmod(0o755)
    with tcpdump(lab, "client", work / "ike.pcap") as pcap:
        proc = lab.run(
            "client",
            sys.executable, "-m", "vpndoctor", "ike", topology.VIP4, "--json",
            "--ca", lab.info.ca_file, "--timeout-s", "12",
            timeout_s=60,
        )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    obs = json.loads(proc.stdout)
    _, report, _ = capture_json(pcap)
    ours = [m for c in report["conversations"] if c["spi_i"] == obs["spi_i"] for m in c["messages"]]
    assert len(ours) == len(obs["datagrams"]) > 0
    for m, d in zip(ours, obs["datagrams"], strict=True):
        assert (m["initiator"], m["port"]) == (d["dir"] == "out", d["port"]), (m, d)
        assert m["size"] + (4 if m["port"] == 4500 else 0) == d["size"], (m, d)
    st = statuses(report)
    if lab.scenario.name == "healthy":
        assert "fail" not in st.values(), report["findings"]
        assert any(m["fragment"] for m in ours)  # the server's answer came as SKF fragments
    else:
        assert obs["timeout_exchange"] == "IKE_AUTH"
        assert st[ids.CAPTURE_IKE_FRAGMENTATION_NOT_NEGOTIATED] == "fail", report["findings"]
        assert st[ids.CAPTURE_IKE_NO_RESPONSE] == "fail", report["findings"]
        assert report["verdict"]["root_causes"][0] == ids.CAPTURE_IKE_FRAGMENTATION_NOT_NEGOTIATED
    assert_tshark_agrees(pcap, report)
