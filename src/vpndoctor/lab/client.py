"""The lab's reference IKEv2 initiator: a strongSwan charon in the client namespace.

`initiate()` dials the VIP the way a Windows user tunnel does (EAP-MSCHAPv2 user, server authenticated by
the lab CA), childless, so that a scenario's effect on a real client can be shown before vpndoctor's own
probes run. `dial()` goes all the way a real client goes: a user tunnel with EAP-MSCHAPv2 (the gateway's
local user, or a RADIUS user) or EAP-TLS (the lab's user certificate, checked by the RADIUS server), or a
device tunnel with the lab's machine certificate; it asks for IPv4 and IPv6 addresses in the configuration
payload and for a CHILD_SA, and reports how far it got, what it was given and the error that stopped it.

This machine's kernel has XFRM but no ESP, so no CHILD_SA can be installed into it. A client started with
`userspace_esp=True` loads strongSwan's kernel-libipsec (ESP in charon, behind a TUN device): its CHILD_SAs
install without kernel ESP, as do the responders' in scenarios with `rras: yes`. Both ends then force UDP
encapsulation (strongSwan fakes a NAT in NAT detection for it), which is why it is not the default.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from vpndoctor.errors import LabError
from vpndoctor.lab import strongswan
from vpndoctor.lab import topology as t
from vpndoctor.lab.runner import STATE_ROOT, LabState, _alive, _Builder, _kill_all, _run
from vpndoctor.lab.scenario import Scenario


@dataclass(frozen=True)
class InitiateResult:
    established: bool
    output: str  # swanctl's log of the attempt


TunnelKind = Literal["eap-mschapv2", "eap-tls", "device"]

# Windows' classic default ESP proposals (AES-CBC-256/128 and 3DES, each with SHA-1): no AES-GCM.
WINDOWS_ESP_PROPOSALS = "aes256-sha1,aes128-sha1,3des-sha1"

# How far a dial got, in order: no answer to IKE_SA_INIT; IKE_SA_INIT answered; the gateway started EAP;
# IKE SA established (authenticated both ways); CHILD_SA established.
Stage = Literal["none", "ike_sa_init", "eap", "authenticated", "child_sa"]
STAGES: tuple[str, ...] = ("none", "ike_sa_init", "eap", "authenticated", "child_sa")


@dataclass(frozen=True)
class Tunnel:
    """What `LabClient.dial` dials. The class methods build the lab's tunnel types."""

    kind: TunnelKind = "eap-mschapv2"
    user: str | None = None  # EAP identity (eap-mschapv2, eap-tls)
    password: str | None = None  # eap-mschapv2
    cert: str | None = None  # eap-tls and device: certificate and key files
    key: str | None = None
    # IDi. None: the client's IP address for EAP, as Windows sends; the certificate's subject for device.
    ike_id: str | None = None
    vips: tuple[str, ...] = ("0.0.0.0", "::")  # ask for an IPv4 and an IPv6 address
    child: bool = True  # ask for a CHILD_SA (needs a client started with userspace_esp=True)
    esp_proposals: str = WINDOWS_ESP_PROPOSALS
    remote_ts: str = "0.0.0.0/0, ::/0"  # what the client asks to reach: everything (force tunnel)
    aaa_id: str | None = None  # EAP-TLS: the name the RADIUS server's certificate must carry

    @classmethod
    def local_user(cls, password: str = t.EAP_PASSWORD, **kw: Any) -> Tunnel:
        """The gateway's own EAP-MSCHAPv2 user: IDi is the user name, which selects the local user tunnel
        also when RADIUS is configured."""
        return cls(user=t.EAP_USER, password=password, ike_id=t.EAP_USER, **kw)

    @classmethod
    def radius_user(cls, user: str = "bob", password: str | None = None, **kw: Any) -> Tunnel:
        """An EAP-MSCHAPv2 user of the RADIUS server (IDi: the client's address, as Windows sends)."""
        pw = password if password is not None else t.RADIUS_USERS.get(user, "no-such-password")
        return cls(user=user, password=pw, **kw)

    @classmethod
    def eap_tls(cls, cert: str, key: str, user: str = t.EAP_TLS_USER, **kw: Any) -> Tunnel:
        return cls(kind="eap-tls", user=user, cert=cert, key=key, aaa_id=t.NPS_NAME, **kw)

    @classmethod
    def device(cls, cert: str, key: str, **kw: Any) -> Tunnel:
        return cls(kind="device", cert=cert, key=key, **kw)


@dataclass(frozen=True)
class DialResult:
    """What the lab client saw on one dial (measured from its charon's log and vici)."""

    name: str
    stage: str  # one of STAGES: how far the gateway let the client go
    ike_established: bool
    child_established: bool
    # What stopped it: an error notify (AUTHENTICATION_FAILED, NO_PROPOSAL_CHOSEN, TS_UNACCEPTABLE,
    # INTERNAL_ADDRESS_FAILURE, ...), EAP_FAILURE, or TIMEOUT (the gateway stopped answering).
    error: str | None
    notifies: tuple[str, ...]  # error notifies received, in order
    eap_methods: tuple[str, ...]  # EAP methods the gateway asked for, in order
    last_request: str | None  # the client's last request, e.g. "IKE_AUTH request 2 [ EAP/RES/ID ]"
    answered: bool  # whether the gateway answered that request
    virtual_ips: tuple[str, ...]
    dns: tuple[str, ...]  # DNS servers received (INTERNAL_IP4/IP6_DNS)
    unhandled: tuple[str, ...]  # attributes received that strongSwan's client has no handler for
    local_ts: tuple[str, ...]
    remote_ts: tuple[str, ...]
    output: str = field(repr=False)  # swanctl's output
    log: str = field(repr=False)  # the client charon's log of this dial

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("output", "log")}


class LabClient:
    """Start with `start()`, dial with `initiate()`, stop with `stop()` (or let `lab down` do it)."""

    def __init__(
        self,
        prefix: str,
        *,
        remote: str | None = None,
        fragmentation: bool = True,
        proposals: str = "default",
        name: str = "client-charon",
        userspace_esp: bool = False,
    ) -> None:
        state = LabState.load(prefix)
        if state is None or not state.ready:
            raise LabError(f"lab '{prefix}' is not up")
        self.state = state
        self.prefix = prefix
        self.name = name
        scenario = Scenario.model_validate(state.scenario)
        self.remote = remote or t.target_addresses(scenario.edge_dnat)[0]
        self.fragmentation = fragmentation
        self.proposals = proposals
        self.workdir = STATE_ROOT / prefix / name
        self.pid: int | None = None
        # userspace_esp: kernel-libipsec (CHILD_SAs without kernel ESP), EAP-TLS and the resolve plugin
        # (received DNS servers go to a file in the workdir, and are logged).
        self.userspace_esp = userspace_esp
        self._dials = 0

    def start(self) -> LabClient:
        # One client charon per lab: an earlier one still holds UDP 500/4500 in the client namespace.
        stale = [p.pid for p in self.state.processes if p.name == self.name and _alive(p.pid)]
        if stale:
            _kill_all(stale)
        self.state.processes = [p for p in self.state.processes if p.name != self.name]
        wd = self.workdir
        shutil.rmtree(wd, ignore_errors=True)
        swan = wd / "swanctl"
        for sub in ("x509ca", "x509", "private"):
            (swan / sub).mkdir(parents=True, exist_ok=True)
        (swan / "conf.d").mkdir()
        shutil.copy(Path(self.state.workdir) / "pki" / "ca.pem", swan / "x509ca" / "ca.pem")
        if self.userspace_esp:
            conf = strongswan.strongswan_conf(
                wd, None, userspace_esp=True, client_extra="eap-tls resolve", resolve_file=wd / "resolv.conf"
            )
        else:
            conf = strongswan.strongswan_conf(wd, None)
        (wd / "strongswan.conf").write_text(conf)
        (swan / "swanctl.conf").write_text(
            strongswan.initiator_swanctl_conf(
                self.remote, fragmentation=self.fragmentation, proposals=self.proposals
            )
            + "include conf.d/*.conf\n"
        )
        builder = _Builder(Scenario.model_validate(self.state.scenario), self.prefix)
        builder.state = self.state
        argv = strongswan.charon_command(
            t.namespace(self.prefix, "client"), wd, mute_resolvconf=self.userspace_esp
        )
        self.pid = builder.spawn(self.name, "client", argv)
        builder.wait_for("lab client charon", lambda: builder._vici_ok(wd), self.pid)
        _run(
            strongswan.swanctl_command(wd, "--load-all", "--noprompt"),
            env=dict(os.environ, SWANCTL_DIR=str(swan)),
        )
        return self

    def initiate(self, timeout_s: float = 20.0) -> InitiateResult:
        """Dial an IKE SA without CHILD_SA: it proves reachability, fragmentation and authentication."""
        proc = _run(
            strongswan.swanctl_command(
                self.workdir, "--initiate", "--ike", "lab", "--timeout", str(int(timeout_s))
            ),
            check=False,
            timeout_s=timeout_s + 10,
        )
        text = proc.stdout + proc.stderr
        established = re.search(r"IKE_SA lab\[\d+\] established", text) is not None
        return InitiateResult(established=established, output=text)

    def log(self) -> str:
        try:
            return (self.workdir / "charon.log").read_text(errors="replace")
        except OSError:
            return ""

    # -- real tunnels ---------------------------------------------------------------------------------
    def dial(self, tunnel: Tunnel, timeout_s: float = 20.0) -> DialResult:
        """Dial one tunnel (a new connection `t<n>`) and report how far it got. The SA stays up (if it
        came up) until `hangup()`: a second dial meets a gateway that holds the first one's addresses."""
        if tunnel.child and not self.userspace_esp:
            raise LabError("a CHILD_SA needs a lab client started with userspace_esp=True")
        self._dials += 1
        name = f"t{self._dials}"
        swan = self.workdir / "swanctl"
        cert = None
        if tunnel.cert is not None and tunnel.key is not None:
            shutil.copy(tunnel.cert, swan / "x509" / f"{name}.pem")
            shutil.copy(tunnel.key, swan / "private" / f"{name}.key")
            cert = f"{name}.pem"
        auth = "pubkey" if tunnel.kind == "device" else tunnel.kind
        (swan / "conf.d" / f"{name}.conf").write_text(
            strongswan.tunnel_swanctl_conf(
                name,
                self.remote,
                auth=auth,
                proposals=self.proposals,
                ike_id=tunnel.ike_id,
                eap_id=tunnel.user if tunnel.kind != "device" else None,
                password=tunnel.password,
                cert=cert,
                aaa_id=tunnel.aaa_id,
                vips=tunnel.vips,
                child=tunnel.child,
                esp_proposals=tunnel.esp_proposals,
                remote_ts=tunnel.remote_ts,
            )
        )
        _run(
            strongswan.swanctl_command(self.workdir, "--load-all", "--noprompt"),
            env=dict(os.environ, SWANCTL_DIR=str(swan)),
        )
        logfile = self.workdir / "charon.log"
        start = logfile.stat().st_size if logfile.exists() else 0
        what = ["--child", name] if tunnel.child else ["--ike", name]
        proc = _run(
            strongswan.swanctl_command(self.workdir, "--initiate", *what, "--timeout", str(int(timeout_s))),
            check=False,
            timeout_s=timeout_s + 10,
        )
        with open(logfile, "rb") as fh:
            fh.seek(start)
            log = fh.read().decode(errors="replace")
        return parse_dial(name, log, proc.stdout + proc.stderr, self._sa(name))

    def hangup(self, name: str | None = None, timeout_s: float = 5.0) -> None:
        """Close one dialled tunnel's IKE SA (all of them without a name), telling the gateway."""
        names = [name] if name else [f"t{i}" for i in range(1, self._dials + 1)]
        for n in names:
            _run(
                strongswan.swanctl_command(
                    self.workdir, "--terminate", "--ike", n, "--timeout", str(int(timeout_s))
                ),
                check=False,
                timeout_s=timeout_s + 10,
            )

    def _sa(self, name: str) -> dict[str, Any]:
        """The IKE SA `name` as charon's vici reports it ({} when there is none)."""
        import vici  # type: ignore[import-untyped]  # the lab's extra dependency

        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(5.0)
        try:
            sock.connect(str(self.workdir / "charon.vici"))
            for sa in vici.Session(sock).list_sas({"ike": name}):
                if name in sa:
                    decoded: dict[str, Any] = _decode(sa[name])
                    return decoded
        except (OSError, vici.exception.SessionException):
            return {}
        finally:
            sock.close()
        return {}

    def stop(self) -> None:
        if self.pid is not None and _alive(self.pid):
            _kill_all([self.pid])
        self.pid = None


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


# Lines of strongSwan 5.9's charon log (level 1) that mark progress and failure.
# The client's own requests of the exchanges that build the SAs (not its fragments, not INFORMATIONAL).
_SENT = re.compile(r"generating ((?:IKE_SA_INIT|IKE_AUTH|CREATE_CHILD_SA) request \d+ \[ (?!EF\()[^\]]*\])")
_PARSED = re.compile(r"parsed (\w+) response (\d+) \[")
_NOTIFY = re.compile(r"received (\w+) notify")
_EAP_REQUEST = re.compile(r"server requested (EAP_\w+)")
_DNS = re.compile(r"(?:installing DNS server (\S+) (?:to|via)|DNS server (\S+) already installed)")
_UNHANDLED = re.compile(r"handling (\S+) attribute failed")
_IKE_UP = re.compile(r"IKE_SA (\S+)\[\d+\] established")
_CHILD_UP = re.compile(r"CHILD_SA (\S+)\{\d+\} established")
_ERROR_NOTIFIES = {
    "AUTHENTICATION_FAILED",
    "NO_PROPOSAL_CHOSEN",
    "TS_UNACCEPTABLE",
    "INTERNAL_ADDRESS_FAILURE",
    "FAILED_CP_REQUIRED",
    "INVALID_KE_PAYLOAD",
    "INVALID_SYNTAX",
    "SINGLE_PAIR_REQUIRED",
    "NO_ADDITIONAL_SAS",
    "TEMPORARY_FAILURE",
    "UNSUPPORTED_CRITICAL_PAYLOAD",
}


def parse_dial(name: str, log: str, output: str, sa: dict[str, Any]) -> DialResult:
    """Read one dial's outcome from the client charon's log (and its IKE SA, if there is one)."""
    stage = "none"
    error: str | None = None
    notifies: list[str] = []
    eap: list[str] = []
    dns: list[str] = []
    unhandled: list[str] = []
    last_request: str | None = None
    last_id: str | None = None
    answered = False
    ike_up = child_up = False
    child_ts: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
    for line in log.splitlines():
        if (m := _SENT.search(line)) is not None:
            last_request = m.group(1)
            last_id = last_request.split()[2]
            answered = False
        elif (m := _PARSED.search(line)) is not None:
            if m.group(2) == last_id:
                answered = True
            if m.group(1) == "IKE_SA_INIT" and stage == "none":
                stage = "ike_sa_init"
        elif (m := _EAP_REQUEST.search(line)) is not None:
            eap.append(m.group(1))
            if stage == "ike_sa_init":
                stage = "eap"
        elif (m := _NOTIFY.search(line)) is not None and m.group(1) in _ERROR_NOTIFIES:
            notifies.append(m.group(1))
            error = error or m.group(1)
        elif "received EAP_FAILURE" in line:
            error = error or "EAP_FAILURE"
        elif (m := _DNS.search(line)) is not None:
            dns.append(m.group(1) or m.group(2))
        elif (m := _UNHANDLED.search(line)) is not None:
            unhandled.append(m.group(1))
        elif (m := _IKE_UP.search(line)) is not None and m.group(1) == name:
            ike_up = True
            stage = "authenticated"
        elif (m := _CHILD_UP.search(line)) is not None and m.group(1) == name:
            child_up = True
            stage = "child_sa"
            ts = line.split(" and TS ", 1)[1] if " and TS " in line else ""
            local, _, remote = ts.partition("===")
            child_ts = (tuple(local.split()), tuple(remote.split()))
    if error is None and not child_up and ("giving up after" in log or not answered):
        error = "TIMEOUT"
    vips = tuple(sa.get("local-vips", [])) if sa else ()
    if sa and sa.get("child-sas"):
        child = next(iter(sa["child-sas"].values()))
        child_ts = (tuple(child.get("local-ts", [])), tuple(child.get("remote-ts", [])))
    return DialResult(
        name=name,
        stage=stage,
        ike_established=ike_up,
        child_established=child_up,
        error=error,
        notifies=tuple(notifies),
        eap_methods=tuple(eap),
        last_request=last_request,
        answered=answered,
        virtual_ips=vips,
        dns=tuple(dns),
        unhandled=tuple(unhandled),
        local_ts=child_ts[0],
        remote_ts=child_ts[1],
        output=output,
        log=log,
    )
