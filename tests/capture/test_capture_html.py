"""`vpndoctor capture --html`: one self-contained page, rendered in headless Chromium: it renders, the SVG
ladder has one arrow per datagram, a click target (#m-...) opens that message's detail, the browser logs no
console message at all (errors, CSP violations). A screenshot is kept as a test artifact.

Outside CI a missing Chromium skips the browser part; in CI (CI=true) it must run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from tests.capture import writer as w
from vpndoctor.capture.analysis import analyse
from vpndoctor.capture.model import CaptureReport
from vpndoctor.report.capture_html import render_capture_html

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = Path(os.environ.get("VPNDOCTOR_SHARED", ROOT.parent / "shared")) / "captures" / "public"
ARTIFACTS = Path(
    os.environ.get("VPNDOCTOR_ARTIFACTS", Path(tempfile.gettempdir()) / "vpndoctor-test-artifacts")
)
_CONSOLE = re.compile(r":CONSOLE(?:\(\d+\))?[:\]].*")


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed (scripts/install-deps.sh installs it); CI must run this test")
    pytest.skip("chromium is not installed")


def _browser(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    argv = [
        chromium(),
        "--headless=new",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        # no traffic anywhere: the page loads from a file, and the browser must not phone home either
        "--no-pings",
        "--disable-domain-reliability",
        "--disable-client-side-phishing-detection",
        "--safebrowsing-disable-auto-update",
        "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *args,
    ]
    if os.geteuid() == 0:
        argv.insert(1, "--no-sandbox")
    return subprocess.run(argv, capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)


def render_in_chromium(page: Path, fragment: str = "") -> tuple[str, list[str]]:
    """The DOM after scripts ran, and every console line the page produced (its own messages, uncaught
    errors, CSP violations: Chromium logs all of them as CONSOLE lines)."""
    with tempfile.TemporaryDirectory() as profile:
        proc = _browser("--dump-dom", page.resolve().as_uri() + fragment, profile=Path(profile))
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [m.group(0) for m in _CONSOLE.finditer(proc.stderr)]
    return proc.stdout, console


def screenshot(page: Path, png: Path, size: str = "1400,1100") -> None:
    with tempfile.TemporaryDirectory() as profile:
        proc = _browser(
            "--hide-scrollbars", f"--window-size={size}", f"--screenshot={png}", page.resolve().as_uri(),
            profile=Path(profile),
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]


def _public(name: str) -> Path:
    path = PUBLIC / name
    if not path.exists():
        pytest.skip(f"shared captures not found at {PUBLIC}")
    return path


def _write(report: CaptureReport, path: Path) -> Path:
    path.write_text(render_capture_html(report), encoding="utf-8")
    return path


# --- without a browser ------------------------------------------------------------------------------------


def test_page_is_self_contained_and_has_one_arrow_per_datagram(tmp_path: Path) -> None:
    report = analyse(_public("ikev2four.pcap"), name="ikev2four.pcap")
    page = render_capture_html(report)
    datagrams = sum(len(c.messages) for c in report.conversations)
    assert datagrams == 21
    assert page.count('class="arrow"') == datagrams
    assert page.count('<section class="detail"') == datagrams
    # nothing fetched: no URL but the SVG namespace, no src= or <link>
    assert re.findall(r"https?://[^\s\"'<>]+", page) == ["http://www.w3.org/2000/svg"] * len(
        report.conversations
    )
    assert " src=" not in page and "<link" not in page
    for f in report.findings:
        assert f.id in page


def test_hostile_strings_are_escaped(tmp_path: Path) -> None:
    report = analyse(_public("ikev2four.pcap"), name='<script>alert("x")</script>.pcap')
    page = render_capture_html(report)
    assert '<script>alert("x")</script>' not in page
    assert "&lt;script&gt;alert(" in page
    assert page.count("<script>") == 1  # ours, allowed by its hash in the CSP


def test_cli_writes_html(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    proc = subprocess.run(
        [sys.executable, "-m", "vpndoctor", "capture", str(_public("ikev2four.pcap")), "--html", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().count('class="arrow"') == 21
    proc = subprocess.run(
        [sys.executable, "-m", "vpndoctor", "capture", str(_public("ikev2four.pcap")), "--html",
         str(tmp_path / "missing-dir" / "r.html")],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


# --- in Chromium ------------------------------------------------------------------------------------------


def test_renders_in_chromium_with_one_arrow_per_datagram(tmp_path: Path) -> None:
    report = analyse(_public("ikev2four.pcap"), name="ikev2four.pcap")
    page = _write(report, tmp_path / "ikev2four.html")
    dom, console = render_in_chromium(page)
    assert console == [], console
    datagrams = sum(len(c.messages) for c in report.conversations)
    # counted by the page's own script after it ran (the CSP would have blocked a script it did not hash)
    assert 'data-ready="yes"' in dom
    assert f'data-arrows="{datagrams}"' in dom
    assert len(re.findall(r'<line class="arrow"', dom)) == datagrams
    assert 'class="detail open"' not in dom


def test_clicked_message_detail_opens(tmp_path: Path) -> None:
    report = analyse(_public("ikev2four.pcap"), name="ikev2four.pcap")
    page = _write(report, tmp_path / "ikev2four.html")
    dom, console = render_in_chromium(page, "#m-0-4")  # the script opens what a click on arrow 5 opens
    assert console == [], console
    opened = re.findall(r'<section class="detail open" id="([^"]+)"', dom)
    assert opened == ["m-0-4"]
    assert re.search(r'<a class="dgram [^"]*selected[^"]*" href="#m-0-4"', dom)


def test_console_errors_would_be_caught(tmp_path: Path) -> None:
    """The oracle is not vacuous: a page with a script error and a blocked fetch does log CONSOLE lines."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><head>"
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'">'
        '</head><body><img src="http://127.0.0.1:9/x.png"></body></html>'
    )
    _, console = render_in_chromium(bad)
    assert console, "a CSP violation must show up as a console line"
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><html><body><script>undefinedFunction();</script></body></html>")
    _, console = render_in_chromium(broken)
    assert any("undefinedFunction" in line for line in console), console


def test_decrypted_and_failure_pages_render_with_screenshot(tmp_path: Path) -> None:
    """A decrypted capture and a synthetic failure, screenshotted into the artifact folder."""
    report = analyse(_public("ikev2pI2.pcap"), name="ikev2pI2.pcap", keys=_pi2_keys())
    page = _write(report, tmp_path / "pi2.html")
    dom, console = render_in_chromium(page, "#m-0-1")
    assert console == [], console
    assert "integrity not-verified" in dom and "fqdn:west" in dom

    failing = _write(_lost_fragments_report(), tmp_path / "lost.html")
    dom, console = render_in_chromium(failing)
    assert console == [] and 'data-arrows="6"' in dom
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    four = _write(analyse(_public("ikev2four.pcap"), name="ikev2four.pcap"), tmp_path / "four.html")
    for name, html in (("capture-ikev2four.png", four), ("capture-lost-fragments.png", failing)):
        png = ARTIFACTS / name
        png.unlink(missing_ok=True)
        screenshot(html, png)
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def _pi2_keys():  # type: ignore[no-untyped-def]
    from vpndoctor.capture.decrypt import load_keys

    return load_keys(str(_public("ikev2pI2-secrets.txt")))


def _lost_fragments_report() -> CaptureReport:
    """IKE_SA_INIT answered, then a 3000-byte IKE_AUTH sent 4 times; only first IP fragments arrive."""
    from tests.capture.test_analysis import CLIENT, SERVER, auth, frame, sa_init_request, sa_init_response
    from tests.capture.test_analysis import analyse as synthetic

    datagram = w.udp(500, 500, auth(response=False, size=3000))
    frames = [
        frame(sa_init_request(frag=True), sport=500, dport=500, to_server=True),
        frame(sa_init_response(frag=False), sport=500, dport=500, to_server=False),
    ]
    for n in range(4):
        frames.append(w.ether(w.ipv4(datagram[:1480], src=CLIENT, dst=SERVER, ident=100 + n, more=True)))
    return synthetic(frames)


def test_tcp_flows_are_listed_and_escaped() -> None:
    from vpndoctor.capture.model import TcpFlow

    report = analyse(_public("ikev2four.pcap"), name="ikev2four.pcap")
    flow = TcpFlow(
        client="198.51.100.10:50000",
        server="203.0.113.10:443",
        t=0.0,
        packets_to_server=5,
        packets_to_client=4,
        bytes_to_server=517,
        bytes_to_client=1200,
        syn_seen=True,
        resets_by_client=0,
        resets_by_server=0,
        protocol="tls",
        sni="<b>vpn</b>.example.test",
        offered_versions=["TLS 1.3"],
    )
    page = render_capture_html(replace(report, tcp_flows=[flow]))
    assert "<h2>TCP 443 flows</h2>" in page and "203.0.113.10:443" in page
    assert "SNI &lt;b&gt;vpn&lt;/b&gt;.example.test" in page and "<b>vpn</b>" not in page


def test_big_captures_are_capped_and_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import vpndoctor.report.capture_html as html

    monkeypatch.setattr(html, "MAX_LADDERS", 1)
    monkeypatch.setattr(html, "MAX_ARROWS_PER_LADDER", 5)
    report = analyse(_public("ikev2four.pcap"), name="ikev2four.pcap")
    page = render_capture_html(report)
    assert page.count('class="arrow"') == 5
    assert "Showing the first 1 of 2 conversations" in page and "(the first 5 drawn)" in page
