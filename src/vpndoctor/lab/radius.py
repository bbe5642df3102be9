"""The lab's NPS stand-in: a FreeRADIUS configuration directory, rendered from a scenario, and the commands
that check and run it.

RRAS hands EAP to NPS over RADIUS; in the lab strongSwan's `eap-radius` plugin hands it to Debian's
FreeRADIUS 3, which runs in the foreground (`freeradius -f -d DIR`) on the internal services host
(topology.RADIUS_HOST) with its own log. The directory is self-contained: it reads nothing from
/etc/freeradius. Every setting not written here is FreeRADIUS's default; where Debian's shipped
configuration sets a value, the same value is written (radiusd.conf's limits, the `eap` module's TLS
versions, the default and inner-tunnel servers' order of modules), trimmed to what an NPS for a VPN needs:
EAP-MSCHAPv2, PEAP-MSCHAPv2 and EAP-TLS against the lab CA, MSCHAPv2 users in a users file, and a policy
that refuses one known user ("denied") as soon as its EAP identity arrives, the way an NPS network policy the
user does not match refuses it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from vpndoctor.lab import topology as t

FREERADIUS = "/usr/sbin/freeradius"
EAPOL_TEST = "eapol_test"
LIBDIR = "/usr/lib/freeradius"  # rlm_*.so

# The RADIUS clients (NAS): the VPN servers, by their own addresses, and the services host itself (so that
# `radtest` and `eapol_test` can be run there, as on an NPS server).
_CLIENTS = {
    **{f"{b}": t.BACKEND4[b] for b in t.BACKENDS},
    **{f"{b}-v6": t.BACKEND6[b] for b in t.BACKENDS},
    "localhost": "127.0.0.1",
    "localhost-v6": "::1",
}


@dataclass(frozen=True)
class RadiusCerts:
    """The files the `eap` module's TLS methods use (lab/pki.py ConnectPkiFiles and the lab CA)."""

    ca_file: Path  # the CA client certificates must chain to (the lab CA)
    certificate_file: Path  # the NPS certificate followed by the lab CA
    private_key_file: Path


def radiusd_conf(confdir: Path, logdir: Path) -> str:
    return f"""# written by vpndoctor lab: the NPS stand-in (FreeRADIUS 3), self-contained
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = ${{exec_prefix}}/sbin
logdir = {logdir}
raddbdir = {confdir}
radacctdir = ${{logdir}}/radacct
name = freeradius
confdir = ${{raddbdir}}
modconfdir = ${{confdir}}/mods-config
certdir = ${{confdir}}
cadir = ${{confdir}}
run_dir = {confdir}/run
db_dir = ${{raddbdir}}
libdir = {LIBDIR}
pidfile = ${{run_dir}}/${{name}}.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 16384
hostname_lookups = no
log {{
\tdestination = files
\tcolourise = no
\tfile = ${{logdir}}/radius.log
\tstripped_names = no
\t# Debian ships `auth = no`; the lab logs each verdict ("Login OK", "Login incorrect") for its tests.
\tauth = yes
\tauth_badpass = no
\tauth_goodpass = no
}}
# No `user`/`group`: the lab runs it as root, in a namespace, on files only root reads.
security {{
\tallow_core_dumps = no
\tmax_attributes = 200
\treject_delay = 1
\tstatus_server = yes
}}
proxy_requests = no
$INCLUDE clients.conf
thread pool {{
\tstart_servers = 5
\tmax_servers = 32
\tmin_spare_servers = 3
\tmax_spare_servers = 10
\tmax_requests_per_server = 0
\tauto_limit_acct = no
}}
modules {{
\t$INCLUDE mods-enabled/
}}
instantiate {{
}}
$INCLUDE sites-enabled/
"""


def clients_conf(secret: str = t.RADIUS_SECRET) -> str:
    lines = ["# written by vpndoctor lab: the RADIUS clients (the VPN servers) and their shared secret"]
    for name, address in _CLIENTS.items():
        key = "ipv6addr" if ":" in address else "ipaddr"
        lines += [
            f"client {name} {{",
            f"\t{key} = {address}",
            f'\tsecret = "{secret}"',
            f"\tshortname = {name}",
            "\tnas_type = other",
            "}",
        ]
    return "\n".join(lines) + "\n"


def users_file() -> str:
    """The `files` module's users: MSCHAPv2 passwords (the denied user has a valid one too)."""
    lines = ["# written by vpndoctor lab: lab-only accounts (see radius.json in the lab directory)"]
    for user, password in t.RADIUS_USERS.items():
        lines.append(f'{user}\tCleartext-Password := "{password}"')
    # A valid account, refused by the default server's network policy (see default_site).
    lines.append(f'{t.RADIUS_DENIED_USER}\tCleartext-Password := "{t.RADIUS_DENIED_PASSWORD}"')
    return "\n".join(lines) + "\n"


def eap_module(certs: RadiusCerts) -> str:
    return f"""# written by vpndoctor lab: EAP-MSCHAPv2, PEAP-MSCHAPv2 and EAP-TLS (Debian's module, trimmed)
eap {{
\t# Debian ships md5; an NPS for VPN clients offers MSCHAPv2 first (clients NAK to TLS or PEAP).
\tdefault_eap_type = mschapv2
\ttimer_expire = 60
\tignore_unknown_eap_types = no
\tcisco_accounting_username_bug = no
\tmax_sessions = ${{max_requests}}
\ttls-config tls-common {{
\t\tprivate_key_file = {certs.private_key_file}
\t\tcertificate_file = {certs.certificate_file}
\t\tca_file = {certs.ca_file}
\t\tcipher_list = "DEFAULT"
\t\tcipher_server_preference = no
\t\ttls_min_version = "1.2"
\t\ttls_max_version = "1.2"
\t\tcache {{
\t\t\tenable = no
\t\t}}
\t\tverify {{
\t\t}}
\t\tocsp {{
\t\t\tenable = no
\t\t}}
\t}}
\ttls {{
\t\ttls = tls-common
\t}}
\tpeap {{
\t\ttls = tls-common
\t\tdefault_eap_type = mschapv2
\t\tcopy_request_to_tunnel = no
\t\tuse_tunneled_reply = no
\t\tvirtual_server = "inner-tunnel"
\t}}
\tmschapv2 {{
\t}}
}}
"""


def inner_eap_module(certs: RadiusCerts) -> str:
    """Debian's `inner-eap` module (mods-available/inner-eap): the EAP methods allowed inside PEAP - MSCHAPv2
    and, for PEAP-TLS (Windows' "Smart Card or other certificate" inside PEAP), EAP-TLS with the NPS
    certificate and the lab CA in place of Debian's snakeoil files."""
    return f"""# written by vpndoctor lab: Debian's inner-eap module (PEAP's inner methods), trimmed
eap inner-eap {{
\tdefault_eap_type = mschapv2
\ttimer_expire = 60
\tmax_sessions = ${{max_requests}}
\tmschapv2 {{
\t}}
\ttls {{
\t\tprivate_key_file = {certs.private_key_file}
\t\tcertificate_file = {certs.certificate_file}
\t\tca_file = {certs.ca_file}
\t\tcipher_list = "DEFAULT"
\t\ttls_min_version = "1.2"
\t\ttls_max_version = "1.2"
\t\tcache {{
\t\t\tenable = no
\t\t}}
\t\tocsp {{
\t\t\tenable = no
\t\t}}
\t}}
}}
"""


def files_module(confdir: Path) -> str:
    return f"""# written by vpndoctor lab
files {{
\tfilename = {confdir / "users"}
}}
"""


DENIED_MESSAGE = "denied by the lab network policy"

# Like an NPS network policy whose conditions the user does not meet: the account exists and its password
# is valid, but the request is refused as soon as its identity is known, before any EAP method starts.
_NETWORK_POLICY = f"""\t\tif (&User-Name == "{t.RADIUS_DENIED_USER}") {{
\t\t\tupdate request {{
\t\t\t\t&Module-Failure-Message := "{DENIED_MESSAGE}"
\t\t\t}}
\t\t\tupdate reply {{
\t\t\t\t&Reply-Message := "{DENIED_MESSAGE}"
\t\t\t}}
\t\t\treject
\t\t}}
"""

# Debian's default and inner-tunnel servers, keeping the modules this configuration has, in their order.
_AUTHORIZE = """\tauthorize {
%s\t\tmschap
\t\teap {
\t\t\tok = return
\t\t}
\t\tfiles
\t\tpap
\t}
\tauthenticate {
\t\tAuth-Type PAP {
\t\t\tpap
\t\t}
\t\tAuth-Type MS-CHAP {
\t\t\tmschap
\t\t}
\t\tmschap
\t\teap
\t}
"""


def default_site() -> str:
    listens = []
    for kind in ("auth", "acct"):
        for key, any_addr in (("ipaddr", "*"), ("ipv6addr", "::")):
            listens.append(f"\tlisten {{\n\t\ttype = {kind}\n\t\t{key} = {any_addr}\n\t\tport = 0\n\t}}\n")
    return f"""# written by vpndoctor lab: Debian's default server, trimmed
server default {{
{"".join(listens)}{_AUTHORIZE % _NETWORK_POLICY}\tpreacct {{
\t\tfiles
\t}}
\taccounting {{
\t\tok
\t}}
\tpost-auth {{
\t\tupdate {{
\t\t\t&reply: += &session-state:
\t\t}}
\t\tPost-Auth-Type REJECT {{
\t\t\teap
\t\t}}
\t}}
\tpost-proxy {{
\t\teap
\t}}
}}
"""


def inner_tunnel_site() -> str:
    # As Debian's inner-tunnel advises for EAP-TLS inside PEAP: the `inner-eap` module instead of `eap`.
    authorize = (_AUTHORIZE % "").replace("\t\teap {", "\t\tinner-eap {")
    authorize = authorize.replace("\t\teap\n", "\t\tinner-eap\n")
    return f"""# written by vpndoctor lab: Debian's inner-tunnel server (PEAP's inner methods), trimmed
server inner-tunnel {{
{authorize}\tpost-auth {{
\t\tPost-Auth-Type REJECT {{
\t\t\tok
\t\t}}
\t}}
}}
"""


def write_config(confdir: Path, certs: RadiusCerts, *, logdir: Path | None = None) -> Path:
    """Write the whole configuration directory; returns it. The log, `radius.log`, goes to `logdir`
    (default: the directory beside the configuration, i.e. the lab's own directory)."""
    for sub in ("mods-enabled", "sites-enabled", "run", "mods-config"):
        (confdir / sub).mkdir(parents=True, exist_ok=True)
    (confdir / "radiusd.conf").write_text(radiusd_conf(confdir, logdir or confdir.parent))
    (confdir / "clients.conf").write_text(clients_conf())
    (confdir / "users").write_text(users_file())
    (confdir / "mods-enabled" / "eap").write_text(eap_module(certs))
    (confdir / "mods-enabled" / "files").write_text(files_module(confdir))
    (confdir / "mods-enabled" / "inner-eap").write_text(inner_eap_module(certs))
    (confdir / "mods-enabled" / "mschap").write_text("mschap {\n}\n")
    (confdir / "mods-enabled" / "pap").write_text("pap {\n}\n")
    (confdir / "mods-enabled" / "always").write_text(
        "".join(f"always {rcode} {{\n\trcode = {rcode}\n}}\n" for rcode in ("ok", "reject"))
    )
    (confdir / "sites-enabled" / "default").write_text(default_site())
    (confdir / "sites-enabled" / "inner-tunnel").write_text(inner_tunnel_site())
    for path in confdir.rglob("*"):
        path.chmod(0o700 if path.is_dir() else 0o600)  # it holds the shared secret and passwords
    confdir.chmod(0o700)
    return confdir


def check_command(confdir: Path) -> list[str]:
    """FreeRADIUS's own judgement of the configuration (`-C`: check and exit; `-X`: say why)."""
    return [FREERADIUS, "-XC", "-d", str(confdir)]


def run_command(confdir: Path) -> list[str]:
    """Foreground, logging to the file radiusd.conf names."""
    return [FREERADIUS, "-f", "-d", str(confdir)]


# --- what a client needs to know: lab-only secrets ---------------------------------------------------------


def connect_info(scenario_radius: str, files: dict[str, str]) -> dict[str, object]:
    """The content of the lab's `connect.json`: servers, accounts and certificate paths (lab-only)."""
    return {
        "server_name": t.SERVER_NAME,
        "local_user": {"user": t.EAP_USER, "password": t.EAP_PASSWORD},
        "radius": {
            "state": scenario_radius,
            "address": [t.RADIUS4, t.RADIUS6],
            "auth_port": t.RADIUS_AUTH_PORT,
            "acct_port": t.RADIUS_ACCT_PORT,
            "secret": t.RADIUS_SECRET,
            "server_name": t.NPS_NAME,
            "users": dict(t.RADIUS_USERS),
            "denied_user": {"user": t.RADIUS_DENIED_USER, "password": t.RADIUS_DENIED_PASSWORD},
        },
        "eap_tls_user": t.EAP_TLS_USER,
        "device_name": t.DEVICE_NAME,
        "dns_suffix": t.DNS_SUFFIX,
        "certificates": files,
    }


def write_connect_info(path: Path, info: dict[str, object]) -> None:
    path.write_text(json.dumps(info, indent=2) + "\n")
    path.chmod(0o600)


# --- eapol_test: RADIUS-level EAP from a VPN server's position (PEAP, which strongSwan has no client for) ---


def eapol_test_conf(
    method: str,
    identity: str,
    *,
    ca_file: Path,
    password: str | None = None,
    cert: Path | None = None,
    key: Path | None = None,
    server_name: str = t.NPS_NAME,
) -> str:
    """wpa_supplicant network block for `eapol_test`: method "PEAP" (inner MSCHAPv2), "PEAP-TLS" (inner
    EAP-TLS with `cert` and `key`), "MSCHAPV2" or "TLS"."""
    outer = "PEAP" if method.startswith("PEAP") else method
    lines = [
        "network={",
        "\tkey_mgmt=WPA-EAP",
        f"\teap={outer}",
        f'\tidentity="{identity}"',
    ]
    if outer in ("PEAP", "TLS"):
        lines += [f'\tca_cert="{ca_file}"', f'\tdomain_match="{server_name}"']
    if method == "PEAP":
        lines += ['\tphase2="auth=MSCHAPV2"']
    if password is not None:
        lines.append(f'\tpassword="{password}"')
    if method == "PEAP-TLS" and cert is not None and key is not None:
        lines += ['\tphase2="auth=TLS"', f'\tca_cert2="{ca_file}"']
        lines += [f'\tclient_cert2="{cert}"', f'\tprivate_key2="{key}"']
    elif cert is not None and key is not None:
        lines += [f'\tclient_cert="{cert}"', f'\tprivate_key="{key}"']
    lines.append("}")
    return "\n".join(lines) + "\n"


def eapol_test_command(conf: Path, *, timeout_s: int = 10) -> list[str]:
    return [
        EAPOL_TEST,
        "-c",
        str(conf),
        "-a",
        t.RADIUS4,
        "-p",
        str(t.RADIUS_AUTH_PORT),
        "-s",
        t.RADIUS_SECRET,
        "-t",
        str(timeout_s),
        "-r",
        "0",
    ]
