"""The daemons judge their own configuration: `haproxy -c`, `nginx -t`, `nft -c -f` and
`keepalived --config-test` accept what vpndoctor generates, and reject it once one word is broken (so the
checks can fail)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from vpndoctor.configgen import generate
from vpndoctor.configgen.model import Deployment


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed")


def _haproxy(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True, timeout=30)


def _nginx(path: Path, netns: str) -> subprocess.CompletedProcess[str]:
    cmd = ["nginx", "-t", "-p", str(path.parent), "-c", str(path), "-e", "stderr"]
    return subprocess.run(["ip", "netns", "exec", netns, *cmd], capture_output=True, text=True, timeout=30)


def _nft(path: Path, netns: str) -> subprocess.CompletedProcess[str]:
    cmd = ["ip", "netns", "exec", netns, "nft", "-c", "-f", str(path)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


def _keepalived(path: Path) -> subprocess.CompletedProcess[str]:
    cmd = ["keepalived", "--config-test", "-f", str(path)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("recipes", [None, ["iphttps-offload"], ["sstp-lb"]])
def test_haproxy_accepts(deployment: Deployment, tmp_path: Path, recipes: list[str] | None) -> None:
    _need("haproxy")
    proc = _haproxy(_write(tmp_path, "haproxy.cfg", generate("haproxy", deployment, recipes)))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_haproxy_rejects_a_typo(deployment: Deployment, tmp_path: Path) -> None:
    _need("haproxy")
    text = generate("haproxy", deployment).replace(" verify required ca-file", " verfy required ca-file", 1)
    assert _haproxy(_write(tmp_path, "haproxy.cfg", text)).returncode != 0


@pytest.mark.parametrize("recipes", [None, ["ikev2-lb"], ["iphttps-offload"], ["sstp-lb"]])
def test_nginx_accepts(deployment: Deployment, tmp_path: Path, netns: str, recipes: list[str] | None) -> None:
    _need("nginx")
    proc = _nginx(_write(tmp_path, "nginx.conf", generate("nginx", deployment, recipes)), netns)
    assert proc.returncode == 0, proc.stderr
    assert "test is successful" in proc.stderr


def test_nginx_rejects_a_typo(deployment: Deployment, tmp_path: Path, netns: str) -> None:
    _need("nginx")
    text = generate("nginx", deployment).replace("proxy_ssl_ciphers", "proxy_ssl_cipher", 1)
    assert _nginx(_write(tmp_path, "nginx.conf", text), netns).returncode != 0


@pytest.mark.parametrize("recipes", [None, ["edge-firewall"], ["ikev2-lb"], ["ikev2-lb", "sstp-lb"]])
def test_nft_accepts(deployment: Deployment, tmp_path: Path, netns: str, recipes: list[str] | None) -> None:
    _need("nft")
    proc = _nft(_write(tmp_path, "rules.nft", generate("nftables", deployment, recipes)), netns)
    assert proc.returncode == 0, proc.stderr


def test_nft_rejects_a_typo(deployment: Deployment, tmp_path: Path, netns: str) -> None:
    _need("nft")
    text = generate("nftables", deployment).replace("jhash ip saddr", "jhash ip sadr", 1)
    assert _nft(_write(tmp_path, "rules.nft", text), netns).returncode != 0


def test_keepalived_accepts(deployment: Deployment, tmp_path: Path) -> None:
    _need("keepalived")
    proc = _keepalived(_write(tmp_path, "keepalived.conf", generate("keepalived", deployment)))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_keepalived_rejects_a_typo(deployment: Deployment, tmp_path: Path) -> None:
    _need("keepalived")
    text = generate("keepalived", deployment).replace("persistence_timeout", "persistance_timeout", 1)
    assert _keepalived(_write(tmp_path, "keepalived.conf", text)).returncode != 0
