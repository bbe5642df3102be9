"""The terminal ladder of `vpndoctor capture` and the fields behind it: time since the first packet
(`t_rel_s`), response times, sizes and the marks (retransmission, IP-fragmented, IP fragments missing,
SKF n/total)."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest
from rich.console import Console

from tests.capture import writer as w
from tests.capture.test_analysis import CLIENT, SERVER, auth, frame, sa_init_request, sa_init_response
from tests.capture.test_analysis import analyse as synthetic
from vpndoctor.capture.analysis import analyse
from vpndoctor.capture.model import CaptureReport
from vpndoctor.report.capture import render_capture


def text_of(report: CaptureReport, width: int = 140) -> str:
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    render_capture(report, console)
    return console.export_text()


def lost_fragments() -> CaptureReport:
    datagram = w.udp(500, 500, auth(response=False, size=3000))
    frames = [
        frame(sa_init_request(frag=True), sport=500, dport=500, to_server=True),
        frame(sa_init_response(frag=False), sport=500, dport=500, to_server=False),
    ]
    for n in range(3):  # only the first IP fragment of each send is captured
        frames.append(w.ether(w.ipv4(datagram[:1480], src=CLIENT, dst=SERVER, ident=100 + n, more=True)))
    frames.append(w.ether(w.ipv4(datagram, src=CLIENT, dst=SERVER, ident=200)))  # one unfragmented jumbo
    return synthetic(frames)


def test_relative_time_response_time_and_marks() -> None:
    report = lost_fragments()
    (conv,) = report.conversations
    msgs = conv.messages
    # frames are one second apart (see the synthetic writer); t stays absolute
    assert [m.t_rel_s for m in msgs] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert msgs[0].t == 1_700_000_000.0
    assert msgs[1].response_time_ms == 1000.0 and msgs[0].response_time_ms is None
    assert [m.ip_fragments_missing for m in msgs] == [False, False, True, True, True, False]
    text = text_of(report)
    rows = [line for line in text.splitlines() if "IKE_" in line and ("▶" in line or "◀" in line)]
    assert len(rows) == 6
    assert "▶" in rows[0] and "◀" in rows[1]  # the responder's answer points back to the initiator
    assert rows[1].lstrip().startswith("1.000") and "after 1000.0 ms" in rows[1]
    assert "IP fragments missing" in rows[2] and "retransmission" not in rows[2]
    assert "IP fragments missing" in rows[3] and "retransmission" in rows[3]
    assert "IP-fragment" not in rows[5] and str(len(auth(response=False, size=3000))) in rows[5]
    assert "[ SA KE NONCE N(IKEV2_FRAGMENTATION_SUPPORTED) ]" in text


def test_public_capture_ladder_directions_and_skf() -> None:
    from tests.capture.test_decrypt import public

    report = analyse(public("ikev2_nat_t.pcapng"), name="ikev2_nat_t.pcapng")
    text = text_of(report)
    arrows = [line for line in text.splitlines() if "▶" in line or "◀" in line]
    assert len(arrows) == report.ike_messages
    for line, m in zip(arrows, [m for c in report.conversations for m in c.messages], strict=True):
        assert ("▶" in line) == m.initiator
        assert f"{m.exchange} {'response' if m.response else 'request'} {m.message_id}" in line
        assert ("UDP 4500" in line) == (m.port == 4500)


def test_hostile_strings_do_not_restyle_the_terminal() -> None:
    report = lost_fragments()
    hostile = replace(report, file="[bold red]evil[/]", warnings=["[link=x]click[/link]"])
    text = text_of(hostile)
    assert "[bold red]evil[/]" in text and "[link=x]click[/link]" in text


def test_terminal_caps_say_what_they_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    import vpndoctor.report.capture as terminal
    from tests.capture.test_decrypt import public

    monkeypatch.setattr(terminal, "MAX_LADDERS", 1)
    monkeypatch.setattr(terminal, "MAX_ROWS_PER_LADDER", 3)
    text = text_of(analyse(public("ikev2four.pcap"), name="ikev2four.pcap"))
    assert len([line for line in text.splitlines() if "▶" in line or "◀" in line]) == 3
    assert "... 17 more datagrams (all of them in --json)" in text
    assert "... and 1 more conversations (all of them in --json)" in text
