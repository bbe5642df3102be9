"""Scenario files and the rule sets and daemon configurations rendered from them."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from vpndoctor.errors import UsageError
from vpndoctor.lab import adc, nftables, radius, strongswan
from vpndoctor.lab import topology as t
from vpndoctor.lab.client import parse_dial
from vpndoctor.lab.pki import (
    REVOCATION_MODES,
    make_connect_pki,
    make_directaccess_pki,
    make_lab_pki,
    make_revocation_pki,
    revocation_urls,
)
from vpndoctor.lab.runner import crl_nginx_argv, crl_nginx_conf, host_records, network_plan
from vpndoctor.lab.scenario import AdcKnobs, Scenario, builtin_scenarios, load_scenario, parse_scenario
from vpndoctor.probes.revocation import urls_of

KNOB_VALUES = {
    "fragments": {"pass", "drop"},
    "server_fragmentation": {True, False},
    "lb_affinity": {"source-address", "per-service"},
    "backends": {1, 2},
    "dns": {"correct", "wrong", "nxdomain"},
    "certificate": {"valid", "expired", "not-yet-valid", "wrong-name", "no-serverauth-eku", "untrusted-ca"},
    "cookies": {"always", "default"},
    # dos_protection: every built-in scenario runs strongSwan's defaults; "strict" variants live in
    # tests/lab/scenarios/, and "off" exists only as a fault knob.
    "nat": {"none", "client-behind-nat"},
    "radius": {"none", "up", "down"},
    "rras": {True, False},
    "split_tunnel": {True, False},
    "scan_vips": {True, False},
    "client_certificate": {"valid", "expired", "no-clientauth-eku", "foreign-ca", "wrong-subject"},
    "revocation": {
        "none",
        "ok",
        "cdp-unreachable",
        "crl-expired",
        "revoked",
        "ocsp-down",
        "aia-intermediate",
    },
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
    assert "fragmentation = no" in conf and "auth = eap-mschapv2" in conf and "send_cert = always" in conf
    assert "proposals = 3des-sha1-modp1024" in strongswan.responder_swanctl_conf(
        "vpn2", s["proposals-windows-default"]
    )
    cookies = strongswan.strongswan_conf(Path("/x"), s["cookies-always"])
    assert "cookie_threshold = 1\n" in cookies and "cookie_threshold_ip = 1\n" in cookies


def test_responders_run_strongswan_default_dos_limits() -> None:
    """No lab setting may exist only to make our probes pass: the shipped scenarios leave charon's DoS
    limits and timeouts at their defaults; `dos_protection` changes them on purpose."""
    s = builtin_scenarios()
    for name, scenario in s.items():
        conf = strongswan.strongswan_conf(Path("/x"), scenario)
        for setting in ("block_threshold", "init_limit_half_open", "half_open_timeout", "retransmit_"):
            assert setting not in conf, (name, setting)
        assert scenario.dos_protection == "default", name
    strict = strongswan.strongswan_conf(
        Path("/x"), s["healthy"].model_copy(update={"dos_protection": "strict"})
    )
    assert "cookie_threshold_ip = 1\n" in strict and "block_threshold = 2\n" in strict
    off = strongswan.strongswan_conf(Path("/x"), s["healthy"].model_copy(update={"dos_protection": "off"}))
    assert "block_threshold = 2000000" in off
    client = strongswan.strongswan_conf(Path("/x"), None)  # the lab's own client gives up quickly
    assert "retransmit_tries = 3" in client


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


# --- the DirectAccess IP-HTTPS ADC -------------------------------------------------------------------------

ADC_SCENARIOS = {name: s for name, s in builtin_scenarios().items() if s.adc is not None}


def test_adc_scenarios_cover_every_adc_knob_for_both_implementations() -> None:
    assert builtin_scenarios()["healthy"].adc is None
    wanted = {"iphttps-adc-nginx", "iphttps-adc-haproxy", "adc-null-missing", "adc-tls10-on"}
    assert wanted <= set(ADC_SCENARIOS)
    for impl in ("nginx", "haproxy"):
        mine = [s.adc for s in ADC_SCENARIOS.values() if s.adc and s.adc.implementation == impl]
        assert {k.client_auth for k in mine} == {"required", "optional", "off"}, impl
        assert {k.null_cipher for k in mine} == {"present", "missing"}, impl
        assert {k.tls10 for k in mine} == {True, False}, impl
    # every ADC scenario changes one thing at most from the recipe
    recipe = AdcKnobs()
    for name, s in ADC_SCENARIOS.items():
        assert s.adc is not None
        knobs = ("client_auth", "null_cipher", "tls10")
        changed = [k for k in knobs if getattr(s.adc, k) != getattr(recipe, k)]
        assert len(changed) <= 1, name


def test_adc_knob_errors() -> None:
    with pytest.raises(UsageError, match=r"adc\.sslv3: .*Debian's OpenSSL 3 .*has no\s+SSLv3"):
        parse_scenario("name: x\nadc: {sslv3: true}\n")
    with pytest.raises(UsageError, match=r"adc\.implementation"):
        parse_scenario("name: x\nadc: {implementation: netscaler}\n")
    with pytest.raises(UsageError, match=r"adc\.ciphers"):
        parse_scenario("name: x\nadc: {ciphers: ALL}\n")
    s = parse_scenario("name: x\nadc: {}\n")
    assert s.adc == AdcKnobs() and s.adc.implementation == "nginx" and s.adc.client_auth == "required"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl")
def test_sslv3_really_is_impossible_here() -> None:
    # Why `adc.sslv3: true` is an error: the OpenSSL the lab's nginx and HAProxy use has no SSLv3 at all.
    proc = subprocess.run(["openssl", "s_client", "-ssl3"], capture_output=True, text=True, timeout=10)
    assert proc.returncode != 0 and "ssl3" in (proc.stdout + proc.stderr).lower()
    ciphers = subprocess.run(["openssl", "ciphers", "-ssl3"], capture_output=True, text=True, timeout=10)
    assert ciphers.returncode != 0


def _adc_files(tmp_path: Path) -> adc.AdcFiles:
    lab = make_lab_pki(t.SERVER_NAME, now=datetime.now(UTC))
    lab_files = lab.write(tmp_path / "pki")
    da = make_directaccess_pki(lab, t.DA_NAME, now=datetime.now(UTC), ip_addresses=[t.DA_VIP4])
    return adc.AdcFiles(lab_ca=lab_files.ca_cert, pki=da.write(tmp_path / "pki"), workdir=tmp_path)


def test_rendered_adc_configs(tmp_path: Path) -> None:
    files = _adc_files(tmp_path)
    recipe = AdcKnobs()
    nginx = adc.nginx_adc_conf(recipe, files, 2)
    for line in (
        f"listen {t.DA_VIP4}:443 ssl;",
        f"listen [{t.DA_VIP6}]:443 ssl;",
        "ssl_protocols TLSv1.2;",
        "ssl_ciphers ECDHE-RSA-AES128-SHA:NULL-SHA:@SECLEVEL=0;",
        "ssl_verify_client on;",
        f"ssl_client_certificate {files.pki.da_ca_cert};",
        "proxy_ssl_ciphers NULL-SHA:NULL-SHA256:@SECLEVEL=0;",
        "proxy_ssl_verify on;",
        "server 192.0.2.18:8443;",
        "server 192.0.2.22:8443;",
    ):
        assert line in nginx, line
    off = adc.nginx_adc_conf(AdcKnobs(client_auth="off", null_cipher="missing", tls10=True), files, 1)
    assert "ssl_client_certificate" not in off and "ssl_verify_client off;" in off
    assert "NULL-SHA:@" not in off.split("proxy_ssl_ciphers")[0]
    assert "ssl_protocols TLSv1 TLSv1.1 TLSv1.2;" in off
    assert "192.0.2.22" not in off
    hap = adc.haproxy_adc_cfg(recipe, files, 2)
    assert f"ca-file {files.pki.da_ca_cert} verify required" in hap
    assert "ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.2" in hap and "prefer-client-ciphers" in hap
    assert f"verifyhost {t.DA_NAME}" in hap and "ciphers NULL-SHA:NULL-SHA256:@SECLEVEL=0" in hap
    assert "verify optional" in adc.haproxy_adc_cfg(AdcKnobs(client_auth="optional"), files, 2)
    hap_off = adc.haproxy_adc_cfg(AdcKnobs(client_auth="off", tls10=True), files, 2)
    assert "verify none" in hap_off and "ca-file " + str(files.pki.da_ca_cert) not in hap_off
    assert "ssl-min-ver TLSv1.0 ssl-max-ver TLSv1.2" in hap_off
    backend = adc.haproxy_backend_cfg("vpn2", files)
    assert "bind 192.0.2.22:8443 ssl" in backend and "bind [2001:db8:12::2]:8443 ssl" in backend
    assert "ciphers NULL-SHA:NULL-SHA256:@SECLEVEL=0 ssl-min-ver TLSv1.0 ssl-max-ver TLSv1.2" in backend
    assert "DirectAccess stand-in on vpn2" in backend


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@needs_root
@pytest.mark.skipif(shutil.which("nginx") is None or shutil.which("haproxy") is None, reason="nginx, haproxy")
@pytest.mark.parametrize("name", sorted(ADC_SCENARIOS))
def test_adc_configs_are_accepted_by_the_daemons(name: str, tmp_path: Path) -> None:
    knobs = ADC_SCENARIOS[name].adc
    assert knobs is not None
    files = _adc_files(tmp_path)
    conf = tmp_path / "adc-nginx.conf"
    conf.write_text(adc.nginx_adc_conf(knobs, files, 2))
    # In a private network namespace holding the VIP, like the lab's lb: `nginx -t` binds IPv6 listeners.
    check = adc.nginx_argv(conf, conf.read_text(), "adc-nginx", tmp_path, test=True)
    setup = f"ip link set lo up && ip addr add {t.DA_VIP4}/32 dev lo && ip addr add {t.DA_VIP6}/128 dev lo"
    script = f'{setup} && exec "$@"'
    proc = subprocess.run(
        ["unshare", "-n", "sh", "-c", script, "sh", *check], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    for text in (adc.haproxy_adc_cfg(knobs, files, 2), adc.haproxy_backend_cfg("vpn1", files)):
        cfg = tmp_path / "haproxy.cfg"
        cfg.write_text(text)
        proc = subprocess.run(adc.haproxy_argv(cfg, test=True), capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0 and "WARNING" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_nginx_globals_add_only_what_the_file_lacks(tmp_path: Path) -> None:
    pid = tmp_path / "x.pid"
    added = adc.nginx_globals("stream {}", pid)
    assert added == f"load_module {adc.NGINX_STREAM_MODULE}; daemon off; pid {pid};"
    assert adc.nginx_globals("include /etc/nginx/modules-enabled/*.conf;", pid) == f"daemon off; pid {pid};"
    assert "load_module" not in adc.nginx_globals("load_module modules/ngx_stream_module.so;", pid)


def test_lb_ruleset_without_udp_dnat_keeps_tcp() -> None:
    lb = nftables.lb_ruleset(builtin_scenarios()["healthy"], udp_dnat=False)
    assert "udp dport 500 dnat" not in lb and "udp dport 4500 dnat" not in lb
    assert "tcp dport 443 dnat" in lb


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None, reason="needs root and nft")
def test_lb_ruleset_without_udp_dnat_is_accepted(tmp_path: Path) -> None:
    proc = _nft_check(nftables.lb_ruleset(builtin_scenarios()["healthy"], udp_dnat=False), tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_override_arguments(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text("events {}\n")
    assert adc.parse_overrides([f"adc-nginx={conf}", f"lb-nft={conf}"]) == {
        "adc-nginx": conf.resolve(),
        "lb-nft": conf.resolve(),
    }
    assert adc.parse_overrides([]) == {}
    with pytest.raises(UsageError, match="expected NAME=FILE"):
        adc.parse_overrides(["adc-nginx"])
    with pytest.raises(UsageError, match="unknown override 'f5'; expected one of: adc-nginx, adc-haproxy"):
        adc.parse_overrides([f"f5={conf}"])
    with pytest.raises(UsageError, match="no such file"):
        adc.parse_overrides([f"edge-nft={tmp_path / 'missing.nft'}"])
    with pytest.raises(UsageError, match="either adc-nginx or adc-haproxy"):
        adc.parse_overrides([f"adc-nginx={conf}", f"adc-haproxy={conf}"])


@needs_root
def test_preflight_names_the_missing_adc_package(monkeypatch: pytest.MonkeyPatch) -> None:
    from vpndoctor.errors import LocalEnvironmentError
    from vpndoctor.lab import runner

    runner.preflight(builtin_scenarios()["iphttps-adc-nginx"])  # everything is installed here
    real_which = shutil.which
    monkeypatch.setattr(runner.shutil, "which", lambda b: None if b == "haproxy" else real_which(b))
    runner.preflight(builtin_scenarios()["healthy"])  # no ADC, no HAProxy needed
    with pytest.raises(LocalEnvironmentError, match=r"^missing Debian package\(s\): haproxy \(apt-get"):
        runner.preflight(builtin_scenarios()["iphttps-adc-nginx"])
    monkeypatch.setattr(runner.shutil, "which", real_which)
    monkeypatch.setattr(runner, "NGINX_FILES", {"/nonexistent/ngx_stream_module.so": "libnginx-mod-stream"})
    runner.preflight(builtin_scenarios()["iphttps-adc-haproxy"])  # HAProxy ADC: no nginx needed
    with pytest.raises(LocalEnvironmentError, match=r"libnginx-mod-stream"):
        runner.preflight(builtin_scenarios()["iphttps-adc-nginx"])
    with pytest.raises(LocalEnvironmentError, match=r"libnginx-mod-stream"):
        runner.preflight(builtin_scenarios()["healthy"], {"lb-nginx": "x"})


def test_scenario_file_hostile_inputs_are_one_line_errors(tmp_path: Path) -> None:
    """A user's scenario file: a FIFO without a writer is refused at once, /dev/zero-sized input is bounded,
    and PyYAML's unguarded int() (over 4,300 digits) is a usage error, not a traceback."""
    import os

    fifo = tmp_path / "scenario.yaml"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match="a FIFO with no writer"):
        load_scenario(str(fifo))
    big = tmp_path / "big.yaml"
    big.write_text("name: big\ndescription: " + "x" * 300_000 + "\n")
    with pytest.raises(UsageError, match="larger than 256 KiB"):
        load_scenario(str(big))
    digits = tmp_path / "digits.yaml"
    digits.write_text("name: digits\nrtt_ms: " + "9" * 5000 + "\n")
    with pytest.raises(UsageError, match="not valid YAML"):
        load_scenario(str(digits))


# --- the RADIUS (NPS) side and the RRAS-shaped connections --------------------------------------------------

CONNECT_SCENARIOS = {name: s for name, s in builtin_scenarios().items() if s.radius != "none" or s.rras}


def test_scenarios_without_the_new_knobs_render_as_before() -> None:
    """Existing scenarios keep their responders: one local EAP-MSCHAPv2 connection, kernel IPsec only, no
    RADIUS, no device tunnel, no configuration attributes but the addresses."""
    for name, s in builtin_scenarios().items():
        if name in CONNECT_SCENARIOS:
            continue
        conf = strongswan.responder_swanctl_conf("vpn1", s)
        settings = strongswan.strongswan_conf(Path("/x"), s)
        assert conf.count("auth = eap-") == 1 and "eap-radius" not in conf and "aovpn-device" not in conf
        assert "addrs = 203.0.113.128/26\n  }" in conf and "dns =" not in conf, name
        assert "local_ts = 0.0.0.0/0, ::/0" in conf and f"esp_proposals = {strongswan.ESP_PROPOSALS}" in conf
        assert "kernel-libipsec" not in settings and "eap-radius" not in settings, name
    assert {"eap-radius", "radius-down", "pool-exhausted", "child-proposal-mismatch", "split-tunnel"} <= set(
        CONNECT_SCENARIOS
    )


def test_rendered_rras_and_radius_connections() -> None:
    s = builtin_scenarios()
    conf = strongswan.responder_swanctl_conf("vpn1", s["eap-radius"])
    conns = conf.split("pools {")[0]
    # the local user tunnel stays, for IDi = its user; RADIUS takes every other identity; a device tunnel
    assert "  aovpn {" in conns and f"      id = {t.EAP_USER}\n" in conns
    assert "  aovpn-radius {" in conns and "auth = eap-radius" in conns
    assert "  aovpn-device {" in conns and "cacerts = lab-ca.pem" in conns
    assert conns.count("send_cert = always") == 3
    assert f"dns = {t.DNS4}" in conf and f"dns = {t.DNS6}" in conf and f"25 = {t.DNS_SUFFIX}" in conf
    settings = strongswan.strongswan_conf(Path("/x"), s["eap-radius"])
    load = next(line for line in settings.splitlines() if line.strip().startswith("load ="))
    assert "eap-radius" in load and load.index("kernel-libipsec") < load.index("kernel-netlink")
    assert f"address = {t.RADIUS4}" in settings and f"secret = {t.RADIUS_SECRET}" in settings
    # radius without rras: RADIUS, but no device tunnel and no userspace ESP
    plain = s["eap-radius"].model_copy(update={"rras": False})
    assert "aovpn-device" not in strongswan.responder_swanctl_conf("vpn1", plain)
    assert "kernel-libipsec" not in strongswan.strongswan_conf(Path("/x"), plain)
    # rras without radius: device tunnel, local user for everybody
    local = s["eap-radius"].model_copy(update={"radius": "none"})
    assert "aovpn-radius" not in strongswan.responder_swanctl_conf("vpn1", local)
    assert f"id = {t.EAP_USER}" not in strongswan.responder_swanctl_conf("vpn1", local).split("pools {")[0]
    assert "eap-radius" not in strongswan.strongswan_conf(Path("/x"), local)


def test_rendered_pool_child_and_split_knobs() -> None:
    s = builtin_scenarios()
    pool = strongswan.responder_swanctl_conf("vpn2", s["pool-exhausted"])
    assert (
        "addrs = 203.0.113.193-203.0.113.193" in pool and "addrs = 2001:db8:ff02::1-2001:db8:ff02::1" in pool
    )
    assert strongswan.pool_ranges("vpn1", 3) == (
        "203.0.113.129-203.0.113.131",
        "2001:db8:ff01::1-2001:db8:ff01::3",
    )
    child = strongswan.responder_swanctl_conf("vpn1", s["child-proposal-mismatch"])
    assert child.count("esp_proposals = aes256gcm16\n") == 3
    split = strongswan.responder_swanctl_conf("vpn1", s["split-tunnel"])
    assert split.count("local_ts = 192.0.2.0/24, 2001:db8::/40") == 3
    assert "subnet = 192.0.2.0/24" in split and "subnet = 2001:db8::/40" in split
    with pytest.raises(UsageError, match="pool_size"):
        parse_scenario("name: x\npool_size: 0\n")
    with pytest.raises(UsageError, match="child_proposals"):
        parse_scenario("name: x\nchild_proposals: 'aes; reboot'\n")
    with pytest.raises(UsageError, match="radius"):
        parse_scenario("name: x\nradius: maybe\n")


def test_nps_ruleset_counts_and_drops_only_when_down() -> None:
    s = builtin_scenarios()
    up = nftables.nps_ruleset(s["eap-radius"])
    down = nftables.nps_ruleset(s["radius-down"])
    assert "udp dport 1812 counter name radius_auth\n" in up and "drop" not in up
    assert "udp dport 1812 counter name radius_auth drop" in down and "udp dport 1813" in down


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None, reason="needs root and nft")
def test_nps_ruleset_is_accepted_by_the_kernel(tmp_path: Path) -> None:
    for name in ("eap-radius", "radius-down"):
        proc = _nft_check(nftables.nps_ruleset(builtin_scenarios()[name]), tmp_path)
        assert proc.returncode == 0, proc.stderr


def _radius_dir(tmp_path: Path) -> Path:
    lab = make_lab_pki(t.SERVER_NAME, now=datetime.now(UTC))
    files = lab.write(tmp_path / "pki")
    connect = make_connect_pki(
        lab, now=datetime.now(UTC), user=t.EAP_TLS_USER, device=t.DEVICE_NAME, nps_name=t.NPS_NAME
    ).write(tmp_path / "pki")
    certs = radius.RadiusCerts(
        ca_file=files.ca_cert, certificate_file=connect.nps_chain, private_key_file=connect.nps_key
    )
    return radius.write_config(tmp_path / "radius", certs)


def test_rendered_freeradius_config(tmp_path: Path) -> None:
    confdir = _radius_dir(tmp_path)
    main = (confdir / "radiusd.conf").read_text()
    assert f"raddbdir = {confdir}\n" in main and f"logdir = {tmp_path}\n" in main
    assert "$INCLUDE clients.conf" in main and "user =" not in main
    clients = (confdir / "clients.conf").read_text()
    for backend in t.BACKENDS:
        assert f"ipaddr = {t.BACKEND4[backend]}" in clients and f"ipv6addr = {t.BACKEND6[backend]}" in clients
    assert clients.count(f'secret = "{t.RADIUS_SECRET}"') == 6
    users = (confdir / "users").read_text()
    for user, password in t.RADIUS_USERS.items():
        assert f'{user}\tCleartext-Password := "{password}"' in users
    assert f'{t.RADIUS_DENIED_USER}\tCleartext-Password := "{t.RADIUS_DENIED_PASSWORD}"' in users
    eap = (confdir / "mods-enabled" / "eap").read_text()
    assert "default_eap_type = mschapv2" in eap and "peap {" in eap and "tls {" in eap
    assert f"ca_file = {tmp_path / 'pki' / 'ca.pem'}" in eap
    assert f"certificate_file = {tmp_path / 'pki' / 'nps-chain.pem'}" in eap
    default = (confdir / "sites-enabled" / "default").read_text()
    policy = default.index(f'if (&User-Name == "{t.RADIUS_DENIED_USER}")')
    assert policy < default.index("\t\teap {") and "reject" in default[policy:]
    assert 'virtual_server = "inner-tunnel"' in eap
    assert (confdir / "sites-enabled" / "inner-tunnel").exists()
    assert stat.S_IMODE(confdir.stat().st_mode) == 0o700
    assert stat.S_IMODE((confdir / "clients.conf").stat().st_mode) == 0o600


@pytest.mark.skipif(not Path(radius.FREERADIUS).exists(), reason="freeradius not installed")
def test_freeradius_accepts_the_rendered_config(tmp_path: Path) -> None:
    confdir = _radius_dir(tmp_path)
    proc = subprocess.run(radius.check_command(confdir), capture_output=True, text=True, timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Configuration appears to be OK" in out, out[-3000:]
    # the modules and servers it loaded are the ones written here
    assert f"including configuration file {confdir}/mods-enabled/eap" in out
    assert "/etc/freeradius" not in out


def test_eapol_test_conf() -> None:
    peap = radius.eapol_test_conf("PEAP", "bob", ca_file=Path("/ca.pem"), password="pw")
    assert 'phase2="auth=MSCHAPV2"' in peap and f'domain_match="{t.NPS_NAME}"' in peap
    tls = radius.eapol_test_conf(
        "TLS", "dave", ca_file=Path("/ca.pem"), cert=Path("/u.pem"), key=Path("/u.key")
    )
    assert 'client_cert="/u.pem"' in tls and "password" not in tls
    argv = radius.eapol_test_command(Path("/x.conf"))
    assert argv[argv.index("-a") + 1] == t.RADIUS4 and argv[argv.index("-s") + 1] == t.RADIUS_SECRET


def test_tunnel_swanctl_conf() -> None:
    tls = strongswan.tunnel_swanctl_conf(
        "t1",
        t.VIP4,
        auth="eap-tls",
        eap_id="dave@lab.test",
        cert="t1.pem",
        aaa_id=t.NPS_NAME,
        vips=("0.0.0.0", "::"),
    )
    local = tls.split("local {")[1].split("}")[0]
    assert "auth = eap-tls" in local and f"aaa_id = {t.NPS_NAME}" in local and "certs = t1.pem" in local
    assert "vips = 0.0.0.0, ::" in tls and "esp_proposals = default" in tls and "secrets" not in tls
    mschap = strongswan.tunnel_swanctl_conf(
        "t2", t.VIP4, auth="eap-mschapv2", eap_id="bob", password="pw", child=False
    )
    assert (
        'secret = "pw"' in mschap
        and "children" not in mschap
        and "id = " not in mschap.split("remote {")[0].split("eap_id")[0]
    )
    client = strongswan.strongswan_conf(
        Path("/x"),
        None,
        userspace_esp=True,
        client_extra="eap-tls resolve",
        resolve_file=Path("/x/resolv.conf"),
    )
    assert "install_virtual_ip = yes" in client and "reuse_ikesa = no" in client
    assert "file = /x/resolv.conf" in client and "kernel-libipsec kernel-netlink" in client
    assert strongswan.strongswan_conf(Path("/x"), None).count("install_virtual_ip = no") == 1
    mute = strongswan.charon_command("ns", Path("/x"), mute_resolvconf=True)[-1]
    assert "mount --bind /bin/true /sbin/resolvconf" in mute


# Shaped like strongSwan 5.9.8's charon log (level 1), as the lab client writes it.
_RADIUS_DOWN_LOG = """\
21:02:53 01[ENC] <t1|1> generating IKE_SA_INIT request 0 [ SA KE No N(NATD_S_IP) ]
21:02:53 11[ENC] <t1|1> parsed IKE_SA_INIT response 0 [ SA KE No CERTREQ ]
21:02:53 11[ENC] <t1|1> generating IKE_AUTH request 1 [ IDi CERTREQ IDr CPRQ(ADDR) SA TSi TSr ]
21:02:53 11[ENC] <t1|1> generating IKE_AUTH request 1 [ EF(1/2) ]
21:02:53 13[ENC] <t1|1> parsed IKE_AUTH response 1 [ IDr CERT AUTH EAP/REQ/ID ]
21:02:53 13[IKE] <t1|1> server requested EAP_IDENTITY (id 0x00), sending 'bob'
21:02:53 13[ENC] <t1|1> generating IKE_AUTH request 2 [ EAP/RES/ID ]
21:02:54 13[IKE] <t1|1> retransmit 1 of request with message ID 2
21:03:00 13[IKE] <t1|1> giving up after 3 retransmits
"""

_POOL_LOG = """\
21:03:27 12[ENC] <t2|2> generating IKE_SA_INIT request 0 [ SA KE No ]
21:03:27 12[ENC] <t2|2> parsed IKE_SA_INIT response 0 [ SA KE No ]
21:03:27 12[IKE] <t2|2> server requested EAP_IDENTITY (id 0x00), sending 'carol'
21:03:27 12[IKE] <t2|2> server requested EAP_MSCHAPV2 authentication (id 0x01)
21:03:27 12[ENC] <t2|2> generating IKE_AUTH request 5 [ AUTH ]
21:03:27 10[ENC] <t2|2> parsed IKE_AUTH response 5 [ AUTH N(MOBIKE_SUP) N(INT_ADDR_FAIL) ]
21:03:27 10[IKE] <t2|2> IKE_SA t2[2] established between 198.51.100.10[198.51.100.10]...203.0.113.10[vpn]
21:03:27 10[IKE] <t2|2> received INTERNAL_ADDRESS_FAILURE notify, no CHILD_SA built
"""

_UP_LOG = """\
21:04:26 15[ENC] <t1|1> generating IKE_SA_INIT request 0 [ SA KE No ]
21:04:26 15[ENC] <t1|1> parsed IKE_SA_INIT response 0 [ SA KE No ]
21:04:26 15[ENC] <t1|1> generating IKE_AUTH request 1 [ IDi CERT AUTH CPRQ(ADDR ADDR6 DNS DNS6) SA TSi TSr ]
21:04:26 15[ENC] <t1|1> parsed IKE_AUTH response 1 [ IDr CERT AUTH CPRP(ADDR DNS DOMAIN DNS6) SA TSi TSr ]
21:04:26 15[IKE] <t1|1> installing DNS server 192.0.2.50 to /x/resolv.conf
21:04:26 15[CFG] <t1|1> handling INTERNAL_DNS_DOMAIN attribute failed
21:04:26 15[IKE] <t1|1> DNS server 2001:db8:53::2 already installed, increasing refcount
21:04:26 15[IKE] <t1|1> IKE_SA t1[1] established between 198.51.100.10[CN=device1]...203.0.113.10[vpn]
21:04:26 15[IKE] <t1|1> CHILD_SA t1{1} established with SPIs c1_i c2_o and TS 203.0.113.9/32 === 192.0.2.0/24
"""


def test_parse_dial() -> None:
    down = parse_dial("t1", _RADIUS_DOWN_LOG, "", {})
    assert (down.stage, down.error, down.answered) == ("eap", "TIMEOUT", False)
    assert down.last_request == "IKE_AUTH request 2 [ EAP/RES/ID ]" and down.eap_methods == ("EAP_IDENTITY",)
    pool = parse_dial("t2", _POOL_LOG, "", {})
    assert (pool.stage, pool.error, pool.ike_established) == (
        "authenticated",
        "INTERNAL_ADDRESS_FAILURE",
        True,
    )
    assert pool.notifies == ("INTERNAL_ADDRESS_FAILURE",) and pool.answered
    sa = {
        "local-vips": ["203.0.113.129"],
        "child-sas": {"t1-1": {"local-ts": ["203.0.113.129/32"], "remote-ts": ["192.0.2.0/24"]}},
    }
    up = parse_dial("t1", _UP_LOG, "", sa)
    assert (up.stage, up.error, up.child_established) == ("child_sa", None, True)
    assert up.dns == ("192.0.2.50", "2001:db8:53::2") and up.unhandled == ("INTERNAL_DNS_DOMAIN",)
    assert up.virtual_ips == ("203.0.113.129",) and up.remote_ts == ("192.0.2.0/24",)
    assert parse_dial("t1", _UP_LOG, "", {}).remote_ts == ("192.0.2.0/24",)  # from the log alone
    assert parse_dial("t9", "", "", {}).stage == "none"


# --- revocation: the crl host, the intermediate CA and what it publishes ------------------------------------


def _daemon_configs(s: Scenario) -> list[str]:
    """Every configuration text the lab renders for a scenario's daemons (not its certificates)."""
    out = [nftables.edge_ruleset(s), nftables.lb_ruleset(s), nftables.nps_ruleset(s)]
    out += [strongswan.strongswan_conf(Path("/x"), s)]
    out += [strongswan.responder_swanctl_conf(b, s) for b in t.BACKENDS]
    return out


def test_scenarios_without_revocation_render_as_before() -> None:
    """Without the knob: no crl host, no link or route to it, no DNS name for it; and the knob itself changes
    no daemon configuration of any scenario (it adds a host, DNS names and certificates, nothing else)."""
    for name, s in builtin_scenarios().items():
        if s.revocation != "none":
            continue
        roles, links, routes = network_plan(s)
        inside = ("inside",) if s.inside is not None else ()
        assert roles == ("client", "wan", "edge", "lb", "vpn1", "vpn2", "dns", *inside), name
        # rras: the load balancer routes each pool back to its backend; inside: the inside host's links
        pool_routes = (
            tuple(("lb", strongswan.POOLS[b][0], t.BACKEND4[b]) for b in t.BACKENDS) if s.rras else ()
        )
        inside_links = t.INSIDE_LINKS if s.inside is not None else ()
        assert links == t.LINKS + inside_links, name
        assert routes[: len(t.ROUTES) + len(pool_routes)] == t.ROUTES + pool_routes, name
        assert all(r[0] in ("inside", "vpn1", "vpn2") for r in routes[len(t.ROUTES) + len(pool_routes) :])
        records = host_records(s, adc=s.adc is not None)
        assert not any(t.CRL_NAME in r for r in records), name
        assert len(records) == (s.dns != "nxdomain") + (s.adc is not None), name
        if s.certificate != "valid":
            continue
        for mode in REVOCATION_MODES[1:]:
            other = s.model_copy(update={"revocation": mode})
            assert _daemon_configs(other) == _daemon_configs(s), (name, mode)


def test_revocation_scenarios() -> None:
    found = {s.revocation: s for s in builtin_scenarios().values() if s.revocation != "none"}
    assert set(found) == set(REVOCATION_MODES[1:])
    for s in found.values():
        roles, links, routes = network_plan(s)
        assert roles[-1] == t.CRL_HOST and links[-1] in t.CRL_LINKS and t.CRL_ROUTES[0] in routes
        assert f"--host-record={t.CRL_NAME},{t.OCSP_NAME},{t.CRL4},{t.CRL6}" in host_records(s, adc=False)
    with pytest.raises(UsageError, match="leave certificate valid"):
        parse_scenario("name: x\nrevocation: ok\ncertificate: expired\n")
    with pytest.raises(UsageError, match="revocation"):
        parse_scenario("name: x\nrevocation: maybe\n")
    # The crl host's /30 sits outside every other link and the VIP networks it is more specific than.
    taken = {a.split("/")[0] for link in t.LINKS for a in (*link.a_addrs, *link.b_addrs)}
    assert t.CRL4 not in taken and t.CRL6 not in taken


def _pem(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


@pytest.mark.parametrize("mode", REVOCATION_MODES[1:])
def test_revocation_pki(mode: str, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    base = make_lab_pki(t.SERVER_NAME, now=now, ip_addresses=[t.VIP4])
    urls = revocation_urls(
        mode,
        crl_host=t.CRL_NAME,
        ocsp_host=t.OCSP_NAME,
        ocsp_port=t.OCSP_PORT,
        internal_host=t.INTERNAL_PKI_NAME,
    )
    rev = make_revocation_pki(base, mode, now=now, urls=urls)
    files, published = rev.write(tmp_path / "pki", tmp_path / "www", tmp_path / "ocsp")
    leaf, issuing, root = _pem(files.server_cert), _pem(files.issuer_cert), _pem(files.ca_cert)
    assert leaf.issuer == issuing.subject and issuing.issuer == root.subject
    leaf.verify_directly_issued_by(issuing)
    issuing.verify_directly_issued_by(root)
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    ) == [t.SERVER_NAME]
    named = urls_of(leaf)
    assert (tuple(named["crl"]), tuple(named["ocsp"]), tuple(named["ca_issuers"])) == (
        urls.crl,
        urls.ocsp,
        urls.ca_issuers,
    )
    assert urls_of(issuing)["crl"] == [f"http://{t.CRL_NAME}/root.crl"]
    chain = x509.load_pem_x509_certificates(files.server_chain.read_bytes())
    assert [c.subject for c in chain] == (
        [leaf.subject] if mode == "aia-intermediate" else [leaf.subject, issuing.subject]
    )
    crl = x509.load_der_x509_crl((published.www / "issuing.crl").read_bytes())
    assert crl.is_signature_valid(issuing.public_key())  # type: ignore[arg-type]
    listed = crl.get_revoked_certificate_by_serial_number(leaf.serial_number)
    assert (listed is not None) == (mode == "revoked")
    assert crl.next_update_utc is not None and (crl.next_update_utc < now) == (mode == "crl-expired")
    root_crl = x509.load_der_x509_crl((published.www / "root.crl").read_bytes())
    assert root_crl.is_signature_valid(root.public_key()) and root_crl.next_update_utc > now  # type: ignore[arg-type, operator]
    assert x509.load_der_x509_certificate((published.www / "issuing.crt").read_bytes()) == issuing
    index = published.ocsp_index.read_text().split("\t")
    assert index[0] == ("R" if mode == "revoked" else "V") and int(index[3], 16) == leaf.serial_number
    cn = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert index[5] == f"/CN={cn}\n" and oct(published.issuing_key.stat().st_mode & 0o777) == "0o600"
    # OpenSSL's verdict with both CRLs (the oracle the lab test repeats over HTTP).
    crl_args = []
    for name in ("root.crl", "issuing.crl"):
        pem = tmp_path / f"{name}.pem"
        subprocess.run(
            ["openssl", "crl", "-inform", "DER", "-in", str(published.www / name), "-out", str(pem)],
            check=True,
            timeout=30,
        )
        crl_args += ["-CRLfile", str(pem)]
    proc = subprocess.run(
        ["openssl", "verify", "-crl_check_all", "-CAfile", str(files.ca_cert),
         "-untrusted", str(files.issuer_cert), *crl_args, str(files.server_cert)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    if mode == "revoked":
        assert "certificate revoked" in out
    elif mode == "crl-expired":
        assert "CRL has expired" in out
    else:
        assert proc.returncode == 0, out


@needs_root
@pytest.mark.skipif(shutil.which("nginx") is None, reason="needs nginx")
def test_crl_nginx_conf_is_accepted(tmp_path: Path) -> None:
    www = tmp_path / "www"
    www.mkdir()
    conf = tmp_path / "crl-nginx.conf"
    conf.write_text(crl_nginx_conf(tmp_path, www))
    assert f"root {www};" in conf.read_text() and "listen [::]:80;" in conf.read_text()
    check = crl_nginx_argv(conf, tmp_path, test=True)
    proc = subprocess.run(
        ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *check],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
