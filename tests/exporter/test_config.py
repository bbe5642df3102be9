"""Exporter configuration files: the shipped example loads, bad ones give one line and exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vpndoctor.errors import UsageError
from vpndoctor.exporter.config import load_config, load_web_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def test_the_shipped_example_loads() -> None:
    cfg = load_config(str(DEPLOY / "exporter.yml"))
    assert {m.prober for m in cfg.modules.values()} == {"ike", "sstp", "iphttps", "tls", "diagnose"}
    assert load_web_config(str(DEPLOY / "web-config.yml")).basic_auth_users == {}


BAD = {
    "unknown-prober": ("modules: {m: {prober: ping}}", "modules.m: Input tag 'ping'"),
    "unknown-key": ("modules: {m: {prober: ike, prot: 1}}", "modules.m.ike.prot: Extra inputs"),
    "bad-port": ("modules: {m: {prober: sstp, port: 70000}}", "modules.m.sstp.port"),
    "bad-proposal": ("modules: {m: {prober: ike, proposals: [aes999-nonsense]}}", "modules.m.ike.proposals"),
    "no-modules": ("modules: {}", "modules: at least one module"),
    "not-a-mapping": ("- a\n- b", "expected a mapping"),
    "bad-yaml": ("modules: {m: [", "not valid YAML"),
    "bad-cidr": ("modules: {m: {prober: ike}}\nallow: {cidrs: [10.0.0.300/8]}", "allow.cidrs.0"),
    "empty-allow": ("modules: {m: {prober: ike}}\nallow: {}", "allow: an allow list needs names or cidrs"),
    "bad-allow-name": ("modules: {m: {prober: ike}}\nallow: {names: [VPN.example.com]}", "lowercase"),
    "bad-offset": ("modules: {m: {prober: ike}}\nlimits: {timeout_offset_s: -1}", "limits.timeout_offset_s"),
    "missing-ca": ("modules: {m: {prober: ike, ca: [/nonexistent/ca.pem]}}", "module m: cannot read CA file"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_configs_are_one_line_and_exit_2(case: str, tmp_path: Path) -> None:
    text, expected = BAD[case]
    path = tmp_path / "exporter.yml"
    path.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "vpndoctor", "exporter", "--config", str(path), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vpndoctor: error: "), proc.stderr
    assert expected in lines[0], lines[0]


def test_missing_file_and_bad_listen(tmp_path: Path) -> None:
    for args, expected in (
        (["--config", str(tmp_path / "none.yml")], "cannot read"),
        (["--config", str(DEPLOY / "exporter.yml"), "--listen", "localhost:9815"], "give an IP address"),
        (["--config", str(DEPLOY / "exporter.yml"), "--listen", "127.0.0.1:99999"], "port"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "vpndoctor", "exporter", *args], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 2 and expected in proc.stderr and "Traceback" not in proc.stderr, (
            proc.stderr
        )


def test_web_config_needs_bcrypt_hashes(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text("basic_auth_users: {prometheus: plaintext}")
    with pytest.raises(UsageError, match="not a bcrypt hash"):
        load_web_config(str(path))
    path.write_text("tls_server_config: {cert_file: missing.crt, key_file: missing.key}")
    with pytest.raises(UsageError, match="cannot read missing.crt"):
        load_web_config(str(path))


def test_module_files_are_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "exporter.yml"
    path.write_text("modules: {m: {prober: iphttps, ca: [ca.pem, /abs/ca.pem], client_cert: c.pem}}")
    module = load_config(str(path)).modules["m"]
    assert module.ca == [str(tmp_path / "conf" / "ca.pem"), "/abs/ca.pem"]
    assert module.client_cert == str(tmp_path / "conf" / "c.pem")  # type: ignore[union-attr]


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "vpndoctor",
                "exporter",
                "--config",
                str(DEPLOY / "exporter.yml"),
                "--listen",
                f"127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 2 and "cannot listen on 127.0.0.1" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
