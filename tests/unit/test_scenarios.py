"""Scenario files and the rule sets and daemon configurations rendered from them."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from vpndoctor.errors import UsageError
from vpndoctor.lab import adc, nftables, strongswan
from vpndoctor.lab import topology as t
from vpndoctor.lab.pki import make_directaccess_pki, make_lab_pki
from vpndoctor.lab.scenario import AdcKnobs, Scenario, builtin_scenarios, load_scenario, parse_scenario

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
