"""Bring the lab up and down: namespaces, veth pairs, addresses, nftables, and the daemons.

Everything the lab creates is named after its prefix (`{prefix}-{role}` namespaces) and recorded in a
state file under /var/lib/vpndoctor, so `down` can remove it even after a crash. `down` kills only
processes that live in the lab's own namespaces and deletes only the lab's own namespaces.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vpndoctor.errors import LabError, LocalEnvironmentError, UsageError
from vpndoctor.lab import adc, nftables, radius, strongswan
from vpndoctor.lab import topology as t
from vpndoctor.lab.pki import (
    ConnectPkiFiles,
    make_connect_pki,
    make_directaccess_pki,
    make_lab_pki,
    make_revocation_pki,
    revocation_urls,
)
from vpndoctor.lab.scenario import Scenario

STATE_ROOT = Path(os.environ.get("VPNDOCTOR_LAB_STATE", "/var/lib/vpndoctor/lab"))
NETNS_ETC = Path("/etc/netns")
DEFAULT_PREFIX = "vd"
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,7}$")

# binary -> Debian package that provides it
REQUIRED_BINARIES = {
    "ip": "iproute2",
    "nft": "nftables",
    strongswan.CHARON: "strongswan-charon",
    strongswan.SWANCTL: "strongswan-swanctl",
    "dnsmasq": "dnsmasq-base",
    "pppd": "ppp",
    "unshare": "util-linux",
    "mount": "mount",
    "ss": "iproute2",
}
REQUIRED_FILES = {
    "/usr/lib/ipsec/plugins/libstrongswan-eap-mschapv2.so": "libcharon-extra-plugins",
    "/usr/lib/ipsec/plugins/libstrongswan-openssl.so": "libstrongswan-standard-plugins",
}

READY_TIMEOUT_S = 15.0


def _run(
    argv: Sequence[str],
    *,
    timeout_s: float = 15.0,
    check: bool = True,
    env: dict[str, str] | None = None,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=env,
            input=input_text,
            stdin=None if input_text is not None else subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise LocalEnvironmentError(f"{argv[0]} not found") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"'{' '.join(argv)}' did not finish within {timeout_s:g} s") from None
    if check and proc.returncode != 0:
        lines = (proc.stderr.strip() or proc.stdout.strip() or f"exit {proc.returncode}").splitlines()
        msg = next((ln for ln in lines if "rror" in ln), lines[-1]).strip()
        raise LabError(f"'{' '.join(argv)}' failed: {msg}")
    return proc


def sstpd_path() -> str | None:
    beside = Path(sys.executable).parent / "sstpd"
    if beside.exists():
        return str(beside)
    return shutil.which("sstpd")


# What the `radius` and `rras` knobs need on top (lab/radius.py; userspace ESP, see lab/strongswan.py).
RADIUS_BINARIES = {radius.FREERADIUS: "freeradius"}
RADIUS_FILES = {"/usr/lib/ipsec/plugins/libstrongswan-eap-radius.so": "libcharon-extra-plugins"}
RRAS_FILES = {"/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so": "libcharon-extra-plugins"}
CONNECT_FILE = "connect.json"  # servers, lab-only accounts and certificate paths for a real client


def connect_enabled(scenario: Scenario) -> bool:
    """Whether the lab builds what a real client needs after IKE_AUTH (client certificates, RADIUS)."""
    return scenario.radius != "none" or scenario.rras


# What the ADC scenarios and the override hook need on top.
ADC_BINARIES = {adc.HAPROXY: "haproxy"}
NGINX_BINARIES = {adc.NGINX: "nginx-light"}
NGINX_FILES = {adc.NGINX_STREAM_MODULE: "libnginx-mod-stream"}


# What the `revocation` scenarios need on top: the crl host's web server and OCSP responder.
REVOCATION_BINARIES = {"nginx": "nginx-light", "openssl": "openssl"}
CRL_DIR = "crl"  # under the lab's workdir: www/ (what nginx serves) and ocsp/ (the responder's index)


def revocation_enabled(scenario: Scenario) -> bool:
    """Whether the lab runs the crl host and issues certificates with CDP/AIA URLs."""
    return scenario.revocation != "none"


def network_plan(
    scenario: Scenario,
) -> tuple[tuple[str, ...], tuple[t.Link, ...], tuple[tuple[str, str, str], ...]]:
    """The namespaces, links and routes the lab builds for `scenario`: the crl host only for `revocation`,
    the inside host only for `inside` (its routes: see `inside_routes`)."""
    roles = [r for r in t.ROLES if r not in t.OPTIONAL_ROLES]
    links, routes = t.LINKS, t.ROUTES
    if revocation_enabled(scenario):
        roles.append(t.CRL_HOST)
        links, routes = links + t.CRL_LINKS, routes + t.CRL_ROUTES
    if scenario.rras:
        # An RRAS server's static address pool is routed back to it by the corporate network: here the
        # load balancer (the backends' router) sends each pool to its backend, which forwards it into its
        # userspace ESP (see `_Builder.tunnel_routes`).
        backends = t.BACKENDS[: scenario.backends]
        routes = routes + tuple(("lb", strongswan.POOLS[b][0], t.BACKEND4[b]) for b in backends)
    if scenario.inside is not None:
        roles.append(t.INSIDE_HOST)
        links = links + t.INSIDE_LINKS[: scenario.backends]
        routes = routes + inside_routes(scenario)
    return tuple(roles), links, routes


def inside_routes(scenario: Scenario) -> tuple[tuple[str, str, str], ...]:
    """Each backend reaches INSIDE4 over its own link; the inside host routes each pool back to its backend
    (unless `inside.route: missing`). The backends' routes of their pools into the TUN device come once
    charon has created it (`_Builder.tunnel_routes`)."""
    backends = t.BACKENDS[: scenario.backends]
    routes = [(b, f"{t.INSIDE4}/32", t.INSIDE_GATEWAY[b]) for b in backends]
    if scenario.inside is not None and scenario.inside.route == "present":
        routes += [(t.INSIDE_HOST, strongswan.POOLS[b][0], t.INSIDE_RETURN[b]) for b in backends]
    return tuple(routes)


def host_records(scenario: Scenario, adc: bool) -> list[str]:
    """dnsmasq's --host-record arguments: the VPN name (as the `dns` knob says), the ADC's, the crl host's."""
    records = []
    if scenario.dns == "correct":
        records = list(t.target_addresses(scenario.edge_dnat))
    elif scenario.dns == "wrong":
        records = [t.WRONG4, t.WRONG6]
    argv = []
    if records:
        argv.append(f"--host-record={t.SERVER_NAME},{','.join(records)}")
    if adc:
        argv.append(f"--host-record={t.DA_NAME},{t.DA_VIP4},{t.DA_VIP6}")
    if revocation_enabled(scenario):  # the public CDP/AIA/OCSP names; pki.internal.lab.test stays unpublished
        argv.append(f"--host-record={t.CRL_NAME},{t.OCSP_NAME},{t.CRL4},{t.CRL6}")
    return argv


def crl_nginx_conf(workdir: Path, www: Path) -> str:
    """The crl host's nginx: its shipped defaults, serving one directory on port 80 (IPv4 and IPv6)."""
    return (
        "# vpndoctor lab: the CA's CDP and AIA (nginx defaults, one directory)\n"
        "worker_processes 1;\n"
        "events { worker_connections 64; }\n"
        "http {\n"
        "    types { application/pkix-crl crl; application/pkix-cert crt; }\n"
        "    default_type application/octet-stream;\n"
        f"    access_log {workdir / 'crl-access.log'};\n"
        "    server {\n"
        "        listen 80;\n"
        "        listen [::]:80;\n"
        f"        root {www};\n"
        "    }\n"
        "}\n"
    )


def crl_nginx_argv(conf: Path, workdir: Path, *, test: bool = False) -> list[str]:
    argv = [adc.NGINX, "-c", str(conf), "-p", f"{workdir}/", "-e", str(workdir / "crl-nginx-error.log")]
    argv += ["-g", f"daemon off; pid {workdir / 'crl-nginx.pid'};"]
    return [*argv, "-t", "-q"] if test else argv


def adc_enabled(scenario: Scenario, overrides: dict[str, Any] | None) -> bool:
    """Whether the lab runs the DirectAccess ADC parts (its PKI, VIP, backends and front end)."""
    names = set(overrides or ())
    return scenario.adc is not None or bool(names & {"adc-nginx", "adc-haproxy"})


def _needs_nginx(scenario: Scenario, overrides: dict[str, Any] | None) -> bool:
    names = set(overrides or ())
    if names & {"adc-nginx", "lb-nginx"}:
        return True
    return "adc-haproxy" not in names and scenario.adc is not None and scenario.adc.implementation == "nginx"


def preflight(scenario: Scenario | None = None, overrides: dict[str, Any] | None = None) -> None:
    """Fail with one clear line when this machine cannot run the lab (or this scenario's extra daemons)."""
    if os.geteuid() != 0:
        raise LocalEnvironmentError("the lab needs root (network namespaces, nftables): run it as root")
    binaries = dict(REQUIRED_BINARIES)
    files = dict(REQUIRED_FILES)
    if scenario is not None and adc_enabled(scenario, overrides):
        binaries.update(ADC_BINARIES)
    if scenario is not None and _needs_nginx(scenario, overrides):
        binaries.update(NGINX_BINARIES)
        files.update(NGINX_FILES)
    if scenario is not None and scenario.radius != "none":
        files.update(RADIUS_FILES)
        if scenario.radius == "up":
            binaries.update(RADIUS_BINARIES)
    if scenario is not None and scenario.rras:
        files.update(RRAS_FILES)
    if scenario is not None and revocation_enabled(scenario):
        binaries.update(REVOCATION_BINARIES)
    missing = []
    for binary, package in binaries.items():
        if not (Path(binary).exists() if binary.startswith("/") else shutil.which(binary)):
            missing.append(package)
    for path, package in files.items():
        if not Path(path).exists():
            missing.append(package)
    if missing:
        pkgs = " ".join(sorted(set(missing)))
        raise LocalEnvironmentError(f"missing Debian package(s): {pkgs} (apt-get install {pkgs})")
    if scenario is not None and scenario.rras and not Path("/dev/net/tun").exists():
        raise LocalEnvironmentError(
            "/dev/net/tun missing: strongSwan's userspace ESP (kernel-libipsec, `rras` scenarios) needs TUN"
        )
    if sstpd_path() is None:
        raise LocalEnvironmentError(
            "sstpd not found: pip install 'vpndoctor[lab]' (PyPI package sstp-server)"
        )


def check_prefix(prefix: str) -> str:
    if not _PREFIX_RE.match(prefix):
        raise UsageError(
            f"bad lab prefix '{prefix}': expected 1-8 lowercase letters/digits, starting with a letter"
        )
    return prefix


@dataclass
class ProcessRecord:
    name: str
    role: str
    pid: int
    log: str


@dataclass
class LabState:
    prefix: str
    scenario: dict[str, Any]
    workdir: str
    started_at: str
    namespaces: list[str] = field(default_factory=list)
    processes: list[ProcessRecord] = field(default_factory=list)
    ready: bool = False
    overrides: dict[str, str] = field(default_factory=dict)  # override name -> file (see lab/adc.py)

    def save(self) -> None:
        path = Path(self.workdir) / "state.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls, prefix: str) -> LabState | None:
        path = STATE_ROOT / prefix / "state.json"
        try:
            data = json.loads(path.read_text())
            data["processes"] = [ProcessRecord(**p) for p in data.get("processes", [])]
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None


def existing_namespaces(prefix: str) -> list[str]:
    proc = _run(["ip", "netns", "list"], check=False)
    names = {line.split()[0] for line in proc.stdout.splitlines() if line.strip()}
    return [t.namespace(prefix, r) for r in t.ROLES if t.namespace(prefix, r) in names]


def _pids_in(ns: str) -> list[int]:
    proc = _run(["ip", "netns", "pids", ns], check=False)
    return [int(p) for p in proc.stdout.split() if p.isdigit()]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return False


def _kill_all(pids: list[int], *, grace_s: float = 3.0) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    _reap()


def _reap() -> None:
    # Children we started ourselves (when `up` and `down` run in one process, as in tests).
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def lab_down(prefix: str = DEFAULT_PREFIX) -> list[str]:
    """Remove everything a lab with this prefix created. Safe to run twice; returns what it removed."""
    check_prefix(prefix)
    if os.geteuid() != 0:
        raise LocalEnvironmentError("the lab needs root: run `vpndoctor lab down` as root")
    removed: list[str] = []
    namespaces = existing_namespaces(prefix)
    pids = sorted({p for ns in namespaces for p in _pids_in(ns)})
    if pids:
        _kill_all(pids)
        removed.append(f"{len(pids)} process(es)")
    for ns in namespaces:
        _run(["ip", "netns", "del", ns], check=False)
        removed.append(f"namespace {ns}")
    for role in t.ROLES:
        etc = NETNS_ETC / t.namespace(prefix, role)
        if etc.exists():
            shutil.rmtree(etc, ignore_errors=True)
            removed.append(str(etc))
    workdir = STATE_ROOT / prefix
    if workdir.exists():
        shutil.rmtree(workdir, ignore_errors=True)
        removed.append(str(workdir))
    return removed


@dataclass(frozen=True)
class LabInfo:
    prefix: str
    scenario: str
    server_name: str
    addresses: tuple[str, str]
    dns_server: str
    ca_file: str
    client_namespace: str
    workdir: str
    # The DirectAccess IP-HTTPS ADC, when the scenario (or an override) has one.
    da_name: str | None = None
    da_addresses: tuple[str, str] | None = None
    da_pki_dir: str | None = None
    # Scenarios with `radius` or `rras`: what a real client needs (lab-only secrets are in connect_file).
    connect_file: str | None = None  # connect.json: accounts, RADIUS server and secret, certificate paths
    radius_server: str | None = None  # the NPS stand-in's address (RADIUS UDP 1812/1813)
    user_cert: str | None = None  # EAP-TLS user certificate (+ key), carrying the client_certificate defect
    user_key: str | None = None
    machine_cert: str | None = None  # device tunnel machine certificate (+ key), same defect
    machine_key: str | None = None
    # Scenarios with `revocation`: the crl host and what it publishes (CRLs, the intermediate for AIA).
    revocation: str | None = None
    crl_addresses: tuple[str, str] | None = None
    crl_www: str | None = None  # root.crl, issuing.crl, issuing.crt, root.crt
    issuing_ca_file: str | None = None  # the intermediate CA (PEM)
    server_cert_file: str | None = None  # the server certificate (PEM)


class _Builder:
    def __init__(self, scenario: Scenario, prefix: str, overrides: dict[str, Path] | None = None) -> None:
        self.s = scenario
        self.prefix = prefix
        self.workdir = STATE_ROOT / prefix
        self.overrides = dict(overrides or {})
        self.adc = adc_enabled(scenario, self.overrides)
        self.revocation = revocation_enabled(scenario)
        self.state = LabState(
            prefix=prefix,
            scenario=scenario.model_dump(mode="json"),
            workdir=str(self.workdir),
            started_at=datetime.now(UTC).isoformat(),
            overrides={k: str(v) for k, v in self.overrides.items()},
        )

    def ns(self, role: str) -> str:
        return t.namespace(self.prefix, role)

    def nsrun(self, role: str, *argv: str, timeout_s: float = 15.0) -> subprocess.CompletedProcess[str]:
        return _run(["ip", "netns", "exec", self.ns(role), *argv], timeout_s=timeout_s)

    def spawn(self, name: str, role: str, argv: list[str], env: dict[str, str] | None = None) -> int:
        log = self.workdir / f"{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        self.state.processes.append(ProcessRecord(name=name, role=role, pid=proc.pid, log=str(log)))
        self.state.save()
        return proc.pid

    def wait_for(
        self, what: str, probe: Any, pid: int | None = None, timeout_s: float = READY_TIMEOUT_S
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if probe():
                return
            if pid is not None and not _alive(pid):
                raise LabError(f"{what} exited during start-up; see {self.workdir}")
            time.sleep(0.05)
        raise LabError(f"{what} not ready within {timeout_s:g} s; see {self.workdir}")

    # -- steps ---------------------------------------------------------------------------------------
    def build(self) -> LabInfo:
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir, 0o755)
        self.state.save()
        self.pki()
        self.network()
        self.firewall()
        self.dns()
        if self.revocation:
            self.crl_host()
        if self.s.radius != "none":
            self.nps()
        if self.s.inside is not None:
            self.inside_host()
        self.wan()
        for backend in t.BACKENDS[: self.s.backends]:
            self.charon(backend)
            self.sstpd(backend)
            if self.s.rras:
                self.tunnel_routes(backend)
        if self.adc:
            for backend in t.BACKENDS[: self.s.backends]:
                self.da_server(backend)
            self.adc_front()
        if "lb-nginx" in self.overrides:
            self.start_nginx("lb-nginx", "lb", self.overrides["lb-nginx"])
        self.state.ready = True
        self.state.save()
        return info_from_state(self.state)

    def pki(self) -> None:
        ips = [t.VIP4, t.VIP6, t.PUBLIC_VIP4, t.PUBLIC_VIP6]
        pki = make_lab_pki(
            t.SERVER_NAME,
            self.s.certificate,
            now=datetime.now(UTC),
            ip_addresses=ips,
            key_bits=self.s.server_key_bits,
        )
        if self.revocation:
            urls = revocation_urls(
                self.s.revocation,
                crl_host=t.CRL_NAME,
                ocsp_host=t.OCSP_NAME,
                ocsp_port=t.OCSP_PORT,
                internal_host=t.INTERNAL_PKI_NAME,
            )
            revoking = make_revocation_pki(pki, self.s.revocation, now=datetime.now(UTC), urls=urls)
            crl = self.workdir / CRL_DIR
            self.files, self.rev_files = revoking.write(self.workdir / "pki", crl / "www", crl / "ocsp")
        else:
            self.files = pki.write(self.workdir / "pki")
        if self.adc:
            da_ips = [t.DA_VIP4, t.DA_VIP6, *t.BACKEND4.values(), *t.BACKEND6.values()]
            da = make_directaccess_pki(pki, t.DA_NAME, now=datetime.now(UTC), ip_addresses=da_ips)
            self.adc_files = adc.AdcFiles(
                lab_ca=self.files.ca_cert, pki=da.write(self.workdir / "pki"), workdir=self.workdir
            )
        if connect_enabled(self.s):
            connect = make_connect_pki(
                pki,
                now=datetime.now(UTC),
                defect=self.s.client_certificate,
                user=t.EAP_TLS_USER,
                device=t.DEVICE_NAME,
                nps_name=t.NPS_NAME,
            )
            self.connect_files = connect.write(self.workdir / "pki")
            files = {
                "ca": str(self.files.ca_cert),
                "user_cert": str(self.connect_files.user_cert),
                "user_key": str(self.connect_files.user_key),
                "machine_cert": str(self.connect_files.machine_cert),
                "machine_key": str(self.connect_files.machine_key),
                "foreign_ca": str(self.connect_files.foreign_ca_cert),
                "nps_cert": str(self.connect_files.nps_cert),
            }
            info = radius.connect_info(self.s.radius, files)
            info["client_certificate"] = self.s.client_certificate
            radius.write_connect_info(self.workdir / CONNECT_FILE, info)

    def network(self) -> None:
        roles, links, routes = network_plan(self.s)
        for role in roles:
            proc = _run(["ip", "netns", "add", self.ns(role)], check=False)
            if proc.returncode != 0:
                raise LocalEnvironmentError(
                    f"cannot create network namespace {self.ns(role)}: {proc.stderr.strip()}"
                )
            self.state.namespaces.append(self.ns(role))
            self.state.save()
            self.nsrun(role, "ip", "link", "set", "lo", "up")
        mtu_ends = {(t.MTU_LINK[0], t.MTU_LINK[1]), (t.MTU_LINK[2], t.MTU_LINK[3])}
        inside_mtu = self.s.inside.mtu_bytes if self.s.inside is not None else 1500
        inside_ends = {(link.a_role, link.a_if) for link in t.INSIDE_LINKS}
        inside_ends |= {(link.b_role, link.b_if) for link in t.INSIDE_LINKS}
        for link in links:
            _run(
                [
                    "ip",
                    "-n",
                    self.ns(link.a_role),
                    "link",
                    "add",
                    link.a_if,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    link.b_if,
                    "netns",
                    self.ns(link.b_role),
                ]
            )
            for role, ifname, addrs in (
                (link.a_role, link.a_if, link.a_addrs),
                (link.b_role, link.b_if, link.b_addrs),
            ):
                if (role, ifname) in mtu_ends:
                    _run(
                        ["ip", "-n", self.ns(role), "link", "set", ifname, "mtu", str(self.s.path_mtu_bytes)]
                    )
                if (role, ifname) in inside_ends and inside_mtu != 1500:
                    _run(["ip", "-n", self.ns(role), "link", "set", ifname, "mtu", str(inside_mtu)])
                for addr in addrs:
                    extra = ["nodad"] if ":" in addr else []
                    _run(["ip", "-n", self.ns(role), "addr", "add", addr, "dev", ifname, *extra])
                _run(["ip", "-n", self.ns(role), "link", "set", ifname, "up"])
        loopback = dict(t.LOOPBACK_ADDRS)
        if self.s.edge_dnat:
            loopback["edge"] = (f"{t.PUBLIC_VIP4}/32", f"{t.PUBLIC_VIP6}/128")
        if self.adc:
            loopback["lb"] = (*loopback["lb"], f"{t.DA_VIP4}/32", f"{t.DA_VIP6}/128")
        if self.s.inside is not None:
            loopback[t.INSIDE_HOST] = (f"{t.INSIDE4}/32",)
        for role, addrs in loopback.items():
            for addr in addrs:
                _run(["ip", "-n", self.ns(role), "addr", "add", addr, "dev", "lo"])
        routers = list(t.ROUTERS)
        if self.s.rras:  # the backends forward between their userspace ESP's TUN device and the network
            routers += list(t.BACKENDS[: self.s.backends])
        for role in routers:
            self.nsrun(role, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
        for role, dest, gw in routes:
            fam = "-6" if ":" in gw else "-4"
            _run(["ip", "-n", self.ns(role), fam, "route", "add", dest, "via", gw])

    def firewall(self) -> None:
        lb = nftables.lb_ruleset(self.s, udp_dnat="lb-nginx" not in self.overrides)
        for role, text in (("edge", nftables.edge_ruleset(self.s)), ("lb", lb)):
            supplied = self.overrides.get(f"{role}-nft")
            if supplied is not None:
                self.check_supplied(f"{role}-nft", role, ["nft", "-c", "-f", str(supplied)])
                self.nsrun(role, "nft", "-f", str(supplied))
                continue
            path = self.workdir / f"{role}.nft"
            path.write_text(text)
            self.nsrun(role, "nft", "-f", str(path))

    def check_supplied(self, name: str, role: str, argv: list[str]) -> None:
        """Let the daemon itself judge a supplied configuration before the lab runs it."""
        proc = _run(["ip", "netns", "exec", self.ns(role), *argv], check=False, timeout_s=30)
        if proc.returncode != 0:
            lines = (proc.stderr.strip() or proc.stdout.strip() or f"exit {proc.returncode}").splitlines()
            detail = next((ln for ln in lines if "rror" in ln or "emerg" in ln), lines[-1]).strip()
            raise LabError(f"override {name} ({self.overrides[name]}) rejected by {argv[0]}: {detail}")

    def dns(self) -> None:
        etc = NETNS_ETC / self.ns("client")
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text(
            f"# vpndoctor lab\nnameserver {t.DNS4}\noptions timeout:2 attempts:1\n"
        )
        argv = [
            "ip",
            "netns",
            "exec",
            self.ns("dns"),
            "dnsmasq",
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            f"--listen-address={t.DNS4}",
            f"--listen-address={t.DNS6}",
            f"--auth-server=ns.{t.ZONE},eth0",
            f"--auth-zone={t.ZONE}",
            f"--pid-file={self.workdir / 'dnsmasq.pid'}",
            "--log-queries",
            f"--log-facility={self.workdir / 'dnsmasq-queries.log'}",
            "--user=root",
            *host_records(self.s, self.adc),
        ]
        pid = self.spawn("dnsmasq", "dns", argv)
        self.wait_for("dnsmasq", lambda: self._listening("dns", "-uln", 53), pid)

    def inside_host(self) -> None:
        """The corporate network's one host: its firewall (counters; DNS from the pools dropped when the
        scenario says so) and dnsmasq answering the internal zone on INSIDE4 - UDP and TCP 53 - with shipped
        defaults otherwise. Ping is the kernel's."""
        role = t.INSIDE_HOST
        path = self.workdir / "inside.nft"
        path.write_text(nftables.inside_ruleset(self.s))
        self.nsrun(role, "nft", "-f", str(path))
        argv = [
            "ip",
            "netns",
            "exec",
            self.ns(role),
            "dnsmasq",
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            f"--listen-address={t.INSIDE4}",
            f"--local=/{t.ZONE}/",  # the internal zone is ours: unknown names are NXDOMAIN, not forwarded
            f"--host-record={t.INSIDE_NAME},{t.INSIDE4}",
            # split-brain DNS, as most corporate zones have it: the VPN server's public name inside too
            f"--host-record={t.SERVER_NAME},{t.VIP4}",
            f"--pid-file={self.workdir / 'inside-dnsmasq.pid'}",
            "--log-queries",
            f"--log-facility={self.workdir / 'inside-dnsmasq.log'}",
            "--user=root",
        ]
        pid = self.spawn("inside-dnsmasq", role, argv)
        self.wait_for("the inside dnsmasq", lambda: self._listening(role, "-tln", t.INSIDE_TCP_PORT), pid)

    def tunnel_routes(self, backend: str) -> None:
        """The backend's pool into its userspace ESP's TUN device (charon runs with install_routes = no, and
        kernel-libipsec encrypts what the kernel routes into the TUN device): the replies of the inside
        network to a client find the tunnel."""
        pool4 = strongswan.POOLS[backend][0]
        self.wait_for(
            f"{t.ESP_TUN} on {backend}",
            lambda: (
                _run(["ip", "-n", self.ns(backend), "link", "show", t.ESP_TUN], check=False).returncode == 0
            ),
        )
        _run(["ip", "-n", self.ns(backend), "link", "set", t.ESP_TUN, "up"])
        _run(["ip", "-n", self.ns(backend), "route", "replace", pool4, "dev", t.ESP_TUN])

    def crl_host(self) -> None:
        """The lab CA's publication point: nginx serving the CRLs and the intermediate (AIA caIssuers) on
        port 80, and `openssl ocsp` answering for the intermediate's certificates (not for "ocsp-down")."""
        role = t.CRL_HOST
        www = self.rev_files.www
        conf = self.workdir / "crl-nginx.conf"
        conf.write_text(crl_nginx_conf(self.workdir, www))
        nginx = crl_nginx_argv(conf, self.workdir)
        pid = self.spawn("crl-nginx", role, ["ip", "netns", "exec", self.ns(role), *nginx])
        self.wait_for("the crl host's nginx", lambda: self._listening(role, "-tln", 80), pid)
        if self.s.revocation == "ocsp-down":
            return
        files = self.rev_files
        ocsp = [
            "openssl",
            "ocsp",
            "-index",
            str(files.ocsp_index),
            "-port",
            str(t.OCSP_PORT),
            "-CA",
            str(files.issuing_cert),
            "-rsigner",
            str(files.issuing_cert),
            "-rkey",
            str(files.issuing_key),
            "-ndays",
            "1",
            "-ignore_err",
        ]
        pid = self.spawn("ocsp", role, ["ip", "netns", "exec", self.ns(role), *ocsp])
        self.wait_for("the OCSP responder", lambda: self._listening(role, "-tln", t.OCSP_PORT), pid)

    def nps(self) -> None:
        """The NPS stand-in on the services host: its firewall (counters; a silent drop when `down`), and
        FreeRADIUS when `up`, its configuration judged by FreeRADIUS itself first."""
        role = t.RADIUS_HOST
        path = self.workdir / "nps.nft"
        path.write_text(nftables.nps_ruleset(self.s))
        self.nsrun(role, "nft", "-f", str(path))
        if self.s.radius != "up":
            return
        confdir = radius.write_config(
            self.workdir / "radius",
            radius.RadiusCerts(
                ca_file=self.files.ca_cert,
                certificate_file=self.connect_files.nps_chain,
                private_key_file=self.connect_files.nps_key,
            ),
        )
        check = _run(["ip", "netns", "exec", self.ns(role), *radius.check_command(confdir)], check=False)
        if check.returncode != 0:
            lines = (check.stdout + check.stderr).strip().splitlines() or [f"exit {check.returncode}"]
            detail = next((ln for ln in reversed(lines) if "rror" in ln or "ailed" in ln), lines[-1])
            raise LabError(f"FreeRADIUS rejects the lab's configuration ({confdir}): {detail.strip()}")
        argv = ["ip", "netns", "exec", self.ns(role), *radius.run_command(confdir)]
        pid = self.spawn("freeradius", role, argv)
        self.wait_for("FreeRADIUS", lambda: self._owns_socket(role, pid), pid)

    def wan(self) -> None:
        ready = self.workdir / "wan.ready"
        argv = [
            "ip",
            "netns",
            "exec",
            self.ns("wan"),
            sys.executable,
            "-m",
            "vpndoctor.lab.wan",
            "--if-a",
            "to-client",
            "--if-b",
            "to-edge",
            "--delay-ms",
            f"{self.s.rtt_ms / 2:g}",
            "--loss-pct",
            f"{self.s.loss_pct:g}",
            "--seed",
            "1",
            "--ready-file",
            str(ready),
        ]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        pid = self.spawn("wan", "wan", argv, env=env)
        self.wait_for("wan bridge", ready.exists, pid)

    def charon(self, backend: str) -> None:
        wd = self.workdir / backend
        swan = wd / "swanctl"
        for sub in ("x509", "x509ca", "private"):
            (swan / sub).mkdir(parents=True, exist_ok=True)
        shutil.copy(self.files.server_cert, swan / "x509" / "server.pem")
        if self.s.revocation != "aia-intermediate":  # then the gateway knows (and sends) only its own
            shutil.copy(self.files.issuer_cert, swan / "x509ca" / "issuer.pem")
        shutil.copy(self.files.server_key, swan / "private" / "server.key")
        if self.s.rras:  # the device tunnel's trust anchor for machine certificates
            shutil.copy(self.files.ca_cert, swan / "x509ca" / "lab-ca.pem")
        (wd / "strongswan.conf").write_text(strongswan.strongswan_conf(wd, self.s))
        (swan / "swanctl.conf").write_text(strongswan.responder_swanctl_conf(backend, self.s))
        pid = self.spawn(f"charon-{backend}", backend, strongswan.charon_command(self.ns(backend), wd))
        self.wait_for(f"charon on {backend}", lambda: self._vici_ok(wd), pid)
        env = dict(os.environ, SWANCTL_DIR=str(swan))
        _run(strongswan.swanctl_command(wd, "--load-all", "--noprompt"), env=env)

    def _vici_ok(self, wd: Path) -> bool:
        if not (wd / "charon.vici").exists():
            return False
        return _run(strongswan.swanctl_command(wd, "--stats"), check=False, timeout_s=5).returncode == 0

    def sstpd(self, backend: str) -> None:
        wd = self.workdir / backend
        options = wd / "options.sstpd"
        options.write_text(
            "# pppd options for the lab's sstpd\nname sstpd\nrequire-mschap-v2\n"
            "nodefaultroute\nnoipx\nms-dns 192.0.2.50\n"
        )
        exe = sstpd_path()
        assert exe is not None  # preflight checked
        argv = [
            "ip",
            "netns",
            "exec",
            self.ns(backend),
            exe,
            "--listen",
            f"{t.BACKEND4[backend]},{t.BACKEND6[backend]}",
            "--listen-port",
            "443",
            "--pem-cert",
            str(self.files.server_chain),
            "--pem-key",
            str(self.files.server_key),
            "--pppd",
            shutil.which("pppd") or "/usr/sbin/pppd",
            "--pppd-config",
            str(options),
            "--local",
            "203.0.113.1",
            "--remote",
            strongswan.POOLS[backend][0],
        ]
        pid = self.spawn(f"sstpd-{backend}", backend, argv)
        self.wait_for(f"sstpd on {backend}", lambda: self._listening(backend, "-tln", 443), pid)

    # -- the DirectAccess ADC (lab/adc.py) -------------------------------------------------------------
    def da_server(self, backend: str) -> None:
        cfg = self.workdir / backend / "da-haproxy.cfg"
        cfg.parent.mkdir(parents=True, exist_ok=True)
        cfg.write_text(adc.haproxy_backend_cfg(backend, self.adc_files))
        self.start_haproxy(f"da-{backend}", backend, cfg)

    def adc_front(self) -> None:
        for name in ("adc-nginx", "adc-haproxy"):
            if name in self.overrides:
                supplied = self.overrides[name]
                if name == "adc-nginx":
                    self.start_nginx(name, "lb", supplied)
                else:
                    self.start_haproxy(name, "lb", supplied, supplied=True)
                return
        knobs = self.s.adc
        assert knobs is not None  # adc_enabled without an override means the scenario has an `adc` section
        if knobs.implementation == "nginx":
            conf = self.workdir / "adc-nginx.conf"
            conf.write_text(adc.nginx_adc_conf(knobs, self.adc_files, self.s.backends))
            self.start_nginx("adc-nginx", "lb", conf, supplied=False)
        else:
            cfg = self.workdir / "adc-haproxy.cfg"
            cfg.write_text(adc.haproxy_adc_cfg(knobs, self.adc_files, self.s.backends))
            self.start_haproxy("adc-haproxy", "lb", cfg)
        self.wait_for("the ADC front end", lambda: self._listening("lb", "-tln", t.DA_PORT))

    def start_nginx(self, name: str, role: str, conf: Path, *, supplied: bool = True) -> None:
        try:
            text = conf.read_text(errors="replace")
        except OSError as exc:
            raise LabError(f"cannot read {conf}: {exc.strerror}") from None
        if supplied:
            self.check_supplied(name, role, adc.nginx_argv(conf, text, name, self.workdir, test=True))
        argv = ["ip", "netns", "exec", self.ns(role), *adc.nginx_argv(conf, text, name, self.workdir)]
        pid = self.spawn(name, role, argv)
        self.wait_for(name, lambda: self._owns_socket(role, pid), pid)

    def start_haproxy(self, name: str, role: str, cfg: Path, *, supplied: bool = False) -> None:
        if supplied:
            self.check_supplied(name, role, adc.haproxy_argv(cfg, test=True))
        pid = self.spawn(name, role, ["ip", "netns", "exec", self.ns(role), *adc.haproxy_argv(cfg)])
        self.wait_for(name, lambda: self._owns_socket(role, pid), pid)

    def _owns_socket(self, role: str, pid: int) -> bool:
        """Ready = the daemon has opened its listening sockets (TCP or UDP)."""
        proc = _run(["ip", "netns", "exec", self.ns(role), "ss", "-Hlntup"], check=False, timeout_s=5)
        return f"pid={pid}," in proc.stdout

    def _listening(self, role: str, flags: str, port: int) -> bool:
        proc = _run(
            ["ip", "netns", "exec", self.ns(role), "ss", "-H", flags, f"sport = :{port}"],
            check=False,
            timeout_s=5,
        )
        return bool(proc.stdout.strip())


def info_from_state(state: LabState) -> LabInfo:
    s = Scenario.model_validate(state.scenario)
    da = adc_enabled(s, state.overrides)
    connect = connect_enabled(s)
    revocation = revocation_enabled(s)
    pki = ConnectPkiFiles.at(Path(state.workdir) / "pki")
    return LabInfo(
        prefix=state.prefix,
        scenario=s.name,
        server_name=t.SERVER_NAME,
        addresses=t.target_addresses(s.edge_dnat),
        dns_server=t.DNS4,
        ca_file=str(Path(state.workdir) / "pki" / "ca.pem"),
        client_namespace=t.namespace(state.prefix, "client"),
        workdir=state.workdir,
        da_name=t.DA_NAME if da else None,
        da_addresses=(t.DA_VIP4, t.DA_VIP6) if da else None,
        da_pki_dir=str(Path(state.workdir) / "pki") if da else None,
        connect_file=str(Path(state.workdir) / CONNECT_FILE) if connect else None,
        radius_server=t.RADIUS4 if s.radius != "none" else None,
        user_cert=str(pki.user_cert) if connect else None,
        user_key=str(pki.user_key) if connect else None,
        machine_cert=str(pki.machine_cert) if connect else None,
        machine_key=str(pki.machine_key) if connect else None,
        revocation=s.revocation if revocation else None,
        crl_addresses=(t.CRL4, t.CRL6) if revocation else None,
        crl_www=str(Path(state.workdir) / CRL_DIR / "www") if revocation else None,
        issuing_ca_file=str(Path(state.workdir) / "pki" / "issuer.pem") if revocation else None,
        server_cert_file=str(Path(state.workdir) / "pki" / "server.pem") if revocation else None,
    )


def lab_up(
    scenario: Scenario, prefix: str = DEFAULT_PREFIX, overrides: dict[str, str | Path] | None = None
) -> LabInfo:
    """Build the lab; on any failure remove what was built and raise.

    ``overrides`` maps names of `adc.OVERRIDES` (`adc-nginx`, `adc-haproxy`, `lb-nginx`, `edge-nft`, `lb-nft`)
    to configuration files run in place of the lab's generated ones (each checked by its daemon first).
    """
    check_prefix(prefix)
    checked = adc.check_overrides({k: Path(v) for k, v in (overrides or {}).items()})
    preflight(scenario, checked)
    if existing_namespaces(prefix) or (STATE_ROOT / prefix).exists():
        raise LabError(
            f"a lab with prefix '{prefix}' already exists: run `vpndoctor lab down --prefix {prefix}`"
        )
    builder = _Builder(scenario, prefix, checked)
    try:
        return builder.build()
    except BaseException:
        keep = builder.workdir.with_name(f"{prefix}.failed")
        shutil.rmtree(keep, ignore_errors=True)
        if builder.workdir.exists():
            shutil.copytree(
                builder.workdir, keep, ignore=shutil.ignore_patterns("*.vici", "*.key", "*-haproxy.pem")
            )
        lab_down(prefix)
        raise


def lab_status(prefix: str = DEFAULT_PREFIX) -> dict[str, Any]:
    check_prefix(prefix)
    state = LabState.load(prefix)
    namespaces = existing_namespaces(prefix) if os.geteuid() == 0 else []
    status: dict[str, Any] = {"prefix": prefix, "up": bool(state and state.ready), "namespaces": namespaces}
    if state is None:
        status["leftover"] = bool(namespaces)
        return status
    status["scenario"] = state.scenario.get("name")
    status["started_at"] = state.started_at
    status["overrides"] = dict(state.overrides)
    status["processes"] = [
        {"name": p.name, "pid": p.pid, "alive": _alive(p.pid), "log": p.log} for p in state.processes
    ]
    status["info"] = asdict(info_from_state(state))
    return status


def lab_exec(argv: Sequence[str], *, prefix: str = DEFAULT_PREFIX, role: str = "client") -> int:
    check_prefix(prefix)
    if role not in t.ROLES:
        raise UsageError(f"unknown lab host '{role}'; expected one of: {', '.join(t.ROLES)}")
    if not argv:
        raise UsageError("nothing to run: give a command after --")
    if os.geteuid() != 0:
        raise LocalEnvironmentError("the lab needs root: run `vpndoctor lab exec` as root")
    ns = t.namespace(prefix, role)
    if ns not in existing_namespaces(prefix):
        raise LabError(f"no lab namespace {ns}: run `vpndoctor lab up` first")
    try:
        return subprocess.call(["ip", "netns", "exec", ns, *argv])
    except KeyboardInterrupt:
        return 130
