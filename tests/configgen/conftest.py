"""Fixtures of the configuration-generator tests: real PEM files (openssl), a deployment that uses them,
and a throwaway network namespace with the VIPs on loopback for the daemons' own checks."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from vpndoctor.configgen.model import Deployment, deployment_from_data

PREFIX = os.environ.get("VPNDOCTOR_TEST_PREFIX", "vdt")
VIPS = ("203.0.113.10/32", "203.0.113.11/32", "2001:db8:113::10/128")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test that needs the throwaway namespace (`netns`) is a lab test: marked before tests/conftest.py
    decides, for every lab test, to skip it (no root, outside CI) or to fail the run (CI)."""
    for item in items:
        if "netns" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.lab)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.fail("openssl not installed (scripts/install-deps.sh installs it)")
    d = tmp_path_factory.mktemp("pki")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(d / "key.pem"),
            "-out",
            str(d / "cert.pem"),
            "-subj",
            "/CN=vpn.example.com",
            "-days",
            "2",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    (d / "crt.pem").write_bytes((d / "cert.pem").read_bytes() + (d / "key.pem").read_bytes())
    shutil.copy(d / "cert.pem", d / "ca.pem")
    return d


def deployment_data(pki: Path) -> dict[str, object]:
    return {
        "name": "vpn.example.com",
        "vip": "203.0.113.10",
        "vip6": "2001:db8:113::10",
        "servers": [
            {"name": "vpn1", "address": "192.0.2.18", "address6": "2001:db8:11::2"},
            {"name": "vpn2", "address": "192.0.2.22", "address6": "2001:db8:12::2"},
        ],
        "protocols": ["ikev2", "sstp", "iphttps"],
        "iphttps": {"vip": "203.0.113.11"},
        "certificates": {
            "server": {
                "name": "vpn.example.com",
                "cert_file": str(pki / "crt.pem"),
                "key_file": str(pki / "key.pem"),
            },
            "ca": {"name": "ExampleRootCA", "cert_file": str(pki / "ca.pem")},
        },
    }


@pytest.fixture(scope="session")
def deployment(pki: Path) -> Deployment:
    return deployment_from_data(deployment_data(pki))


@pytest.fixture(scope="session")
def netns() -> Iterator[str]:
    """A namespace of our own with the VIPs on lo (nginx -t binds its listen addresses); deleted after."""
    if shutil.which("ip") is None:
        pytest.fail("iproute2 not installed (scripts/install-deps.sh installs it)")
    name = f"{PREFIX}-cfgchk{os.getpid() % 10000}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)
    proc = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, timeout=10)
    if proc.returncode != 0:
        pytest.fail(f"cannot add a network namespace: {proc.stderr.strip()}")
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, timeout=10)
        for addr in VIPS:
            extra = ["nodad"] if ":" in addr else []
            subprocess.run(
                ["ip", "-n", name, "addr", "add", addr, "dev", "lo", *extra], check=True, timeout=10
            )
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)
