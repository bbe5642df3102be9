"""The HTML report: self-contained, escaped, well-formed, every finding anchored."""

from __future__ import annotations

import json
from dataclasses import replace
from html.parser import HTMLParser
from typing import Any

import pytest

from vpndoctor.checks.model import DiagnoseReport, Finding, Target, Verdict
from vpndoctor.report.html import render_html

HOSTILE = "<script>alert(1)</script>"

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Checker(HTMLParser):
    """Tag balance, the attributes that could fetch or run something, and the text of every <pre>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.pre_texts: list[str] = []
        self._pre: list[str] | None = None
        self.declarations: list[str] = []

    def handle_decl(self, decl: str) -> None:
        self.declarations.append(decl)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "pre":
            self._pre = []
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre" and self._pre is not None:
            self.pre_texts.append("".join(self._pre))
            self._pre = None
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self._pre is not None:
            self._pre.append(data)


def _check(page: str) -> _Checker:
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.problems == []
    assert checker.stack == []
    return checker


def _report(**evidence: Any) -> DiagnoseReport:
    return DiagnoseReport(
        tool={"name": "vpndoctor", "version": "0.1.0"},
        target=Target(name="vpn.example.net", addresses=["192.0.2.10", "2001:db8::10"]),
        started_at="2024-05-01T09:30:00Z",
        duration_s=3.4567,
        round_trips=7,
        verdict=Verdict(
            status="problems",
            root_causes=["ike.fragments_dropped", "not.a.finding"],
            summary="UDP 500 answers but fragmented IKE_AUTH never arrives: error 809.",
        ),
        findings=[
            Finding(
                id="ike.fragments_dropped",
                status="fail",
                title="IP fragments are dropped on the path",
                detail=f"The server certificate CN is {HOSTILE}\nand it did not arrive.",
                evidence={"banner": HOSTILE, "sizes_bytes": [1500, 620], **evidence},
                remedy='Enable IKEv2 fragmentation:\n  Set-ItemProperty -Path "HKLM:\\..." -Value 1',
                error_codes=[809, 13801],
            ),
            Finding(
                id="dns.resolves",
                status="pass",
                title="vpn.example.net resolves",
                detail="2 addresses",
                evidence={"answer": HOSTILE, "nested": {"quote": "\"'&"}},
            ),
        ],
    )


def test_hostile_evidence_is_escaped() -> None:
    page = render_html(_report())
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    _check(page)


def test_hostile_target_and_title_are_escaped() -> None:
    report = replace(_report(), target=Target(name='"><img src=x onerror=alert(1)>', addresses=[]))
    page = render_html(report)
    assert "<img" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    _check(page)


def test_self_contained() -> None:
    page = render_html(_report(url="https://evil.example/x.js"))
    checker = _check(page)
    assert checker.declarations == ["DOCTYPE html"]
    names = [tag for tag, _ in checker.tags]
    assert "script" not in names and "link" not in names and "img" not in names and "iframe" not in names
    for tag, attrs in checker.tags:
        assert "src" not in attrs, tag
        href = attrs.get("href")
        assert href is None or href.startswith("#"), href
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "<style>" in page


def test_every_finding_is_anchored_and_root_causes_link_to_it() -> None:
    report = _report()
    checker = _check(render_html(report))
    ids = {attrs["id"] for _, attrs in checker.tags if attrs.get("id")}
    hrefs = [attrs["href"] for _, attrs in checker.tags if attrs.get("href")]
    for finding in report.findings:
        assert f"finding-{finding.id}" in ids
    assert hrefs == ["#finding-ike.fragments_dropped"]  # the root cause with no finding is not linked


def test_every_finding_id_title_and_code_appears() -> None:
    report = _report()
    page = render_html(report)
    for finding in report.findings:
        assert finding.id in page
    assert "IP fragments are dropped on the path" in page
    assert "809, 13801" in page
    assert 'class="status status-fail"' in page and 'class="status status-pass"' in page


def test_header_facts() -> None:
    page = render_html(_report())
    assert "vpn.example.net" in page
    assert "192.0.2.10, 2001:db8::10" in page
    assert "2024-05-01T09:30:00Z" in page
    assert "3.46 s" in page
    assert "<dd>7</dd>" in page
    assert "Generated by vpndoctor 0.1.0." in page


def test_evidence_is_pretty_json_in_collapsible_details() -> None:
    report = _report()
    page = render_html(report)
    assert page.count("<details>") == len(report.findings)
    checker = _check(page)
    evidence = [json.loads(text) for text in checker.pre_texts if text.lstrip().startswith("{")]
    assert evidence == [finding.evidence for finding in report.findings]
    assert any('\n  "banner": ' in text for text in checker.pre_texts)  # indented


def test_remedy_is_preformatted() -> None:
    checker = _check(render_html(_report()))
    assert 'Enable IKEv2 fragmentation:\n  Set-ItemProperty -Path "HKLM:\\..." -Value 1' in checker.pre_texts


@pytest.mark.parametrize("status", ["healthy", "problems"])
def test_verdict_status_and_empty_findings(status: str) -> None:
    report = DiagnoseReport(
        tool={},
        target=Target(name="gw", addresses=[]),
        started_at="2024-05-01T09:30:00Z",
        duration_s=0.0,
        round_trips=0,
        verdict=Verdict(status=status, root_causes=[], summary="Nothing to say."),  # type: ignore[arg-type]
        findings=[],
    )
    page = render_html(report)
    _check(page)
    assert f"verdict-{status}" in page
    assert "Root causes" not in page
    assert "Nothing to say." in page
