"""Scenario files and the rule sets and daemon configurations rendered from them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from vpndoctor.errors import UsageError
from vpndoctor.lab import nftables, strongswan
from vpndoctor.lab.scenario import Scenario, builtin_scenarios, load_scenario, parse_scenario

KNOB_VALUES = {
    "fragments": {"pass", "drop"},
    "server_fragmentation": {True, False},
    "lb_affinity": {"source-address", "per-service"},
    "backends": {1, 2},
    "dns": {"correct", "wrong", "nxdomain"},
    "certificate": {"valid", "expired", "not-yet-valid", "wrong-name", "no-serverauth-eku", "untrusted-ca"},
    "cookies": {"always", "never"},
    "nat": {"none", "client-behind-nat"},
}


def test_builtin_scenarios_cover_every_knob_value() -> None:
    scenarios = builtin_scenarios()
    assert "healthy" in scenarios
    healthy = scenarios["healthy"]
    assert healthy == Scenario(name="healthy", description=healthy.description)
    for knob, values in KNOB_VALUES.items():
        seen = {getattr(s, knob) for s in scenarios.values()}
        assert seen == values, knob
    blocked = {b for s in scenarios.values() for b in s.block}
    assert blocked == {"udp/500", "udp/4500", "tcp/443"}
    assert any(s.rtt_ms > 0 for s in scenarios.values())
    assert any(s.loss_pct > 0 for s in scenarios.values())
    assert any(s.path_mtu_bytes < 1500 for s in scenarios.values())
    assert any(s.proposals == "3des-sha1-modp1024" for s in scenarios.values())
    for name, s in scenarios.items():
        assert s.name == name and s.description


def test_unknown_keys_and_bad_values_are_errors() -> None:
    with pytest.raises(UsageError, match="colour"):
        parse_scenario("name: x\ncolour: blue\n")
    with pytest.raises(UsageError, match="fragments"):
        parse_scenario("name: x\nfragments: maybe\n")
    with pytest.raises(UsageError, match="path_mtu_bytes"):
        parse_scenario("name: x\npath_mtu_bytes: 100\n")
    with pytest.raises(UsageError, match="proposal"):
        parse_scenario("name: x\nproposals: 'aes; rm -rf /'\n")
    with pytest.raises(UsageError, match="not valid YAML"):
        parse_scenario("name: [x\n")
    with pytest.raises(UsageError, match="mapping"):
        parse_scenario("- a\n- b\n")
    with pytest.raises(UsageError, match="unknown scenario"):
        load_scenario("no-such-thing")


def test_scenario_from_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nfragments: drop\nserver_fragmentation: no\nblock: [udp/4500, udp/4500]\n")
    s = load_scenario(str(path))
    assert (s.fragments, s.server_fragmentation, s.block) == ("drop", False, ("udp/4500",))
    with pytest.raises(UsageError, match="cannot read"):
        load_scenario(str(tmp_path / "missing.yaml"))


def test_rendered_rules() -> None:
    s = builtin_scenarios()
    edge = nftables.edge_ruleset(s["error-809-fragments"])
    assert "ip frag-off & 0x3fff != 0" in edge and "exthdr frag exists" in edge
    assert "frag-off" not in nftables.edge_ruleset(s["healthy"])
    assert "th dport 4500 counter drop" in nftables.edge_ruleset(s["block-udp-4500"])
    assert "masquerade" in nftables.edge_ruleset(s["nat-client"])
    lb = nftables.lb_ruleset(s["healthy"])
    # every rule hashes with the same explicit seed, or one client's flows would be split
    assert lb.count(f"seed {nftables.JHASH_SEED:#x}") == 6
    assert "numgen random mod 2" in nftables.lb_ruleset(s["lb-per-service"])
    single = nftables.lb_ruleset(s["lb-single-backend"])
    assert "numgen" not in single and "192.0.2.22" not in single


def test_rendered_strongswan_config() -> None:
    s = builtin_scenarios()
    conf = strongswan.responder_swanctl_conf("vpn1", s["error-809-fragments"])
    assert "fragmentation = no" in conf and "auth = eap-mschapv2" in conf and "send_cert = ifasked" in conf
    assert "proposals = 3des-sha1-modp1024" in strongswan.responder_swanctl_conf(
        "vpn2", s["proposals-windows-default"]
    )
    assert "cookie_threshold = 1\n" in strongswan.strongswan_conf(Path("/x"), s["cookies-always"])
    assert "cookie_threshold = 1000000" in strongswan.strongswan_conf(Path("/x"), s["healthy"])


def _nft_check(text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "rules.nft"
    path.write_text(text)
    # nft -c asks the kernel to validate without committing; a private network namespace keeps it clean.
    return subprocess.run(
        ["unshare", "-n", "nft", "-c", "-f", str(path)], capture_output=True, text=True, timeout=30
    )


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None, reason="needs root and nft")
@pytest.mark.parametrize("name", sorted(builtin_scenarios()))
def test_every_ruleset_is_accepted_by_the_kernel(name: str, tmp_path: Path) -> None:
    s = builtin_scenarios()[name]
    for text in (nftables.edge_ruleset(s), nftables.lb_ruleset(s)):
        proc = _nft_check(text, tmp_path)
        assert proc.returncode == 0, proc.stderr + text
