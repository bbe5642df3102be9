"""strongSwan (charon + swanctl) configuration for the lab's IKEv2 responders and its test initiator.

Each charon runs in its own network namespace and its own mount namespace with a private /run (charon's
pid file path is compiled in); its vici socket lives in the lab's state directory so that swanctl reaches
it from outside.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from vpndoctor.lab import topology as t
from vpndoctor.lab.scenario import DEFAULT_CHILD_PROPOSALS, Scenario

CHARON = "/usr/lib/ipsec/charon"
SWANCTL = "/usr/sbin/swanctl"

# The openssl plugin brings 3DES, AES-GCM, ECP and X25519; the rest are strongSwan's own. No
# kernel-libipsec by default: it would make charon fake NAT_DETECTION_SOURCE_IP to force UDP encapsulation,
# and the lab must show NAT only where the network really translates. (CHILD_SAs cannot be installed into
# this kernel - it has XFRM but no ESP - so the lab's clients authenticate childless and probes stop at
# EAP.) Scenarios with `rras: yes` load kernel-libipsec on the responders, and the lab's client loads it to
# dial tunnels with a CHILD_SA: strongSwan's userspace ESP behind a TUN device, which needs no kernel ESP.
PLUGINS = (
    "random nonce openssl pem pkcs1 pkcs8 x509 pubkey revocation constraints sha1 sha2 md5 hmac gmp "
    "aes gcm kdf socket-default kernel-netlink vici eap-identity eap-mschapv2"
)
USERSPACE_ESP = "kernel-libipsec"  # loaded before kernel-netlink: the first IPsec backend loaded is used

# Pools hand out addresses from documentation ranges; each backend has its own.
POOLS = {
    "vpn1": ("203.0.113.128/26", "2001:db8:ff01::/112"),
    "vpn2": ("203.0.113.192/26", "2001:db8:ff02::/112"),
}

ESP_PROPOSALS = DEFAULT_CHILD_PROPOSALS

# The RADIUS-backed user tunnel and the device tunnel (scenario knobs `radius`, `rras`) sit next to the
# local EAP-MSCHAPv2 user tunnel `aovpn`. charon picks a connection by the client's identity (IDi) and then
# by what the client sends: an AUTH payload (certificate) selects the device tunnel, none (EAP) a user
# tunnel. With RADIUS configured, `aovpn` keeps the local user only for IDi = that user's name (as the lab's
# client sends); any other identity - a Windows client's IDi is its IP address - goes to RADIUS.
RADIUS_CONN = "aovpn-radius"
DEVICE_CONN = "aovpn-device"


def plugins(s: Scenario | None, *, userspace_esp: bool = False, client_extra: str = "") -> str:
    """charon's plugin list: the responders' from the scenario, the lab client's from its options."""
    names = PLUGINS.split()
    if s is not None:
        userspace_esp = s.rras
        if s.radius != "none":
            names.append("eap-radius")
    if userspace_esp:
        names.insert(names.index("kernel-netlink"), USERSPACE_ESP)
    names += client_extra.split()
    return " ".join(names)


def pool_ranges(backend: str, size: int | None) -> tuple[str, str]:
    """The IPv4 and IPv6 pool of one backend: the whole /26 and /112, or the first `size` addresses."""
    pool4, pool6 = POOLS[backend]
    if size is None:
        return pool4, pool6
    ranges = []
    for cidr in (pool4, pool6):
        net = ipaddress.ip_network(cidr)
        first = net.network_address + 1
        ranges.append(f"{first}-{first + size - 1}")
    return ranges[0], ranges[1]


def traffic_selectors(s: Scenario) -> str:
    return ", ".join(t.SPLIT_TUNNEL_NETS) if s.split_tunnel else "0.0.0.0/0, ::/0"


def vici_uri(workdir: Path) -> str:
    return f"unix://{workdir / 'charon.vici'}"


def dos_settings(s: Scenario | None) -> str:
    """charon's DoS limits for one responder: strongSwan's shipped defaults unless a knob says otherwise.

    `dos_protection: default` writes nothing, so charon runs with what it ships (cookie_threshold 30,
    cookie_threshold_ip 3, block_threshold 5 half-open SAs per source, half_open_timeout 30 s), the way
    most strongSwan gateways run. `strict` is a hardened gateway, `off` the old relaxed lab (kept only as
    a fault knob, never to make a probe pass). `cookies: always` demands a COOKIE once any SA is half-open.
    """
    lines: list[str] = []
    mode = s.dos_protection if s is not None else "default"
    if mode == "off":
        # 0 is not "off" for these limits: a threshold no lab run reaches is.
        lines += [
            "cookie_threshold = 1000000",
            "cookie_threshold_ip = 1000000",
            "block_threshold = 2000000",
            "init_limit_half_open = 2000000",
            "init_limit_job_load = 2000000",
        ]
    elif mode == "strict":
        lines += ["cookie_threshold_ip = 1", "block_threshold = 2"]
    if s is not None and s.cookies == "always":
        lines = [x for x in lines if not x.startswith("cookie_threshold")]
        lines += ["cookie_threshold = 1", "cookie_threshold_ip = 1"]
    return "".join(f"  {line}\n" for line in lines)


def eap_radius_settings(s: Scenario | None) -> str:
    """The eap-radius plugin's one RADIUS server (the lab's NPS); strongSwan's defaults otherwise (4 tries,
    2 s first timeout, base 1.4: about 14 s before a silent server counts as failed)."""
    if s is None or s.radius == "none":
        return ""
    return f"""    eap-radius {{
      servers {{
        nps {{
          address = {t.RADIUS4}
          secret = {t.RADIUS_SECRET}
          auth_port = {t.RADIUS_AUTH_PORT}
        }}
      }}
    }}
"""


def strongswan_conf(
    workdir: Path,
    s: Scenario | None,
    *,
    userspace_esp: bool = False,
    client_extra: str = "",
    resolve_file: Path | None = None,
) -> str:
    """strongswan.conf for one charon. `s` is None for the lab's initiator, which may load userspace ESP,
    `client_extra` plugins (e.g. "eap-tls resolve") and write received DNS servers to `resolve_file`."""
    frag = s.fragment_size_bytes if s is not None else 1280
    # The lab's own client (not a system under test) gives up quickly; responders keep charon's defaults.
    retransmit = (
        "  retransmit_tries = 3\n  retransmit_timeout = 1.0\n  retransmit_base = 1.4\n" if s is None else ""
    )
    resolve = f"    resolve {{\n      file = {resolve_file}\n    }}\n" if resolve_file is not None else ""
    # kernel-libipsec routes each CHILD_SA's outbound policy through its TUN device (in the client's own
    # namespace, with an exclude route for the gateway), from the virtual IP, which must then be installed.
    vip = "yes" if s is None and userspace_esp else "no"
    # Each dial is a new IKE SA: charon would otherwise put a CHILD_SA of an identical connection into an
    # IKE SA that is still up (a CREATE_CHILD_SA instead of the IKE_AUTH a real client sends).
    reuse = "  reuse_ikesa = no\n" if s is None and userspace_esp else ""
    return f"""# written by vpndoctor lab
charon {{
  load_modular = no
  load = {plugins(s, userspace_esp=userspace_esp, client_extra=client_extra)}
  install_routes = no
  install_virtual_ip = {vip}
{reuse}{retransmit}{dos_settings(s)}  fragment_size = {frag}
  plugins {{
    vici {{
      socket = {vici_uri(workdir)}
    }}
{eap_radius_settings(s)}{resolve}  }}
  filelog {{
    charon {{
      path = {workdir / "charon.log"}
      time_format = %H:%M:%S
      flush_line = yes
      default = 1
      ike_name = yes
    }}
  }}
  syslog {{
    daemon {{
      default = -1
    }}
  }}
}}
# swanctl reads this file too (STRONGSWAN_CONF): only the plugins it needs, without complaints.
swanctl {{
  load = pem pkcs1 pkcs8 x509 pubkey revocation constraints openssl random nonce
}}
"""


def _responder_conn(name: str, s: Scenario, remote: str, *, child: str) -> str:
    frag = "yes" if s.server_fragmentation else "no"
    return f"""  {name} {{
    version = 2
    proposals = {s.proposals}
    fragmentation = {frag}
    # Windows RRAS sends its certificate in IKE_AUTH whether the client asks for it or not.
    send_cert = always
    send_certreq = yes
    unique = never
    pools = pool4, pool6
    rekey_time = 0
    local {{
      auth = pubkey
      certs = server.pem
      id = {t.SERVER_NAME}
    }}
    remote {{
{remote}    }}
    children {{
      {child} {{
        local_ts = {traffic_selectors(s)}
        esp_proposals = {s.child_proposals}
      }}
    }}
  }}
"""


def _pool(name: str, addrs: str, attributes: list[str]) -> str:
    lines = [f"  {name} {{", f"    addrs = {addrs}", *(f"    {a}" for a in attributes), "  }"]
    return "\n".join(lines) + "\n"


def responder_swanctl_conf(backend: str, s: Scenario) -> str:
    pool4, pool6 = pool_ranges(backend, s.pool_size)
    local_user = "      auth = eap-mschapv2\n      eap_id = %any\n"
    if s.radius != "none":
        local_user += f"      id = {t.EAP_USER}\n"
    conns = [_responder_conn("aovpn", s, local_user, child="aovpn")]
    if s.radius != "none":
        radius = "      auth = eap-radius\n      eap_id = %any\n"
        conns.append(_responder_conn(RADIUS_CONN, s, radius, child=RADIUS_CONN))
    if s.rras:
        device = "      auth = pubkey\n      cacerts = lab-ca.pem\n"
        conns.append(_responder_conn(DEVICE_CONN, s, device, child=DEVICE_CONN))
    attrs4: list[str] = []
    attrs6: list[str] = []
    if s.rras:
        # INTERNAL_DNS_DOMAIN (25, RFC 8598) by number: vici sends a numbered attribute's text as is.
        # With an inside network its DNS server is the one handed out, as RRAS hands out the corporate DNS.
        dns4 = t.INSIDE4 if s.inside is not None else t.DNS4
        attrs4 += [f"dns = {dns4}", f"25 = {t.DNS_SUFFIX}"]
        attrs6 += [f"dns = {t.DNS6}"]
    if s.split_tunnel:
        attrs4 += [f"subnet = {', '.join(n for n in t.SPLIT_TUNNEL_NETS if ':' not in n)}"]
        attrs6 += [f"subnet = {', '.join(n for n in t.SPLIT_TUNNEL_NETS if ':' in n)}"]
    return f"""# written by vpndoctor lab: an Always On VPN user-tunnel style responder
connections {{
{"".join(conns)}}}
pools {{
{_pool("pool4", pool4, attrs4)}{_pool("pool6", pool6, attrs6)}}}
secrets {{
  eap-{t.EAP_USER} {{
    id = {t.EAP_USER}
    secret = "{t.EAP_PASSWORD}"
  }}
}}
"""


def initiator_swanctl_conf(remote: str, *, fragmentation: bool = True, proposals: str = "default") -> str:
    """A Windows-like initiator: EAP-MSCHAPv2 user, server authenticated by certificate."""
    frag = "yes" if fragmentation else "no"
    return f"""# written by vpndoctor lab: the lab's strongSwan client
connections {{
  lab {{
    version = 2
    remote_addrs = {remote}
    proposals = {proposals}
    fragmentation = {frag}
    vips = 0.0.0.0
    send_certreq = yes
    local {{
      auth = eap-mschapv2
      eap_id = {t.EAP_USER}
      id = {t.EAP_USER}
    }}
    remote {{
      auth = pubkey
      id = {t.SERVER_NAME}
    }}
  }}
}}
secrets {{
  eap-{t.EAP_USER} {{
    id = {t.EAP_USER}
    secret = "{t.EAP_PASSWORD}"
  }}
}}
"""


def tunnel_swanctl_conf(
    name: str,
    remote: str,
    *,
    auth: str,
    proposals: str = "default",
    ike_id: str | None = None,
    eap_id: str | None = None,
    password: str | None = None,
    cert: str | None = None,
    aaa_id: str | None = None,
    vips: tuple[str, ...] = (),
    child: bool = True,
    esp_proposals: str = "default",
    remote_ts: str = "0.0.0.0/0, ::/0",
) -> str:
    """One connection of the lab client's, dialled by `LabClient.dial`: `auth` is eap-mschapv2, eap-tls or
    pubkey (device tunnel); `cert` names a file in swanctl/x509 (its key is in swanctl/private)."""
    local = [f"auth = {auth}"]
    if ike_id is not None:
        local.append(f"id = {ike_id}")
    if eap_id is not None:
        local.append(f"eap_id = {eap_id}")
    if cert is not None:
        local.append(f"certs = {cert}")
    if aaa_id is not None:  # the EAP server's identity (the RADIUS server's certificate): a local option
        local.append(f"aaa_id = {aaa_id}")
    remote_cfg = ["auth = pubkey", f"id = {t.SERVER_NAME}"]
    lines = [
        f"  {name} {{",
        "    version = 2",
        f"    remote_addrs = {remote}",
        f"    proposals = {proposals}",
        "    fragmentation = yes",
        "    send_certreq = yes",
        # Windows sends its certificate whether the gateway asked for one from that CA or not.
        "    send_cert = always",
    ]
    if vips:
        lines.append(f"    vips = {', '.join(vips)}")
    lines += ["    local {", *(f"      {x}" for x in local), "    }"]
    lines += ["    remote {", *(f"      {x}" for x in remote_cfg), "    }"]
    if child:
        lines += [
            "    children {",
            f"      {name} {{",
            f"        remote_ts = {remote_ts}",
            f"        esp_proposals = {esp_proposals}",
            "      }",
            "    }",
        ]
    lines.append("  }")
    text = "connections {\n" + "\n".join(lines) + "\n}\n"
    if password is not None and eap_id is not None:
        text += f'secrets {{\n  eap-{name} {{\n    id = {eap_id}\n    secret = "{password}"\n  }}\n}}\n'
    return text


RESOLVCONF = "/sbin/resolvconf"  # the resolve plugin hands DNS servers to it, when it exists, not to its file


def charon_command(namespace: str, workdir: Path, *, mute_resolvconf: bool = False) -> list[str]:
    """The command that starts charon in `namespace` with a private /run. `mute_resolvconf`: in charon's
    mount namespace /sbin/resolvconf (if there is one) becomes /bin/true, so that the resolve plugin
    leaves the machine's DNS alone (it still logs each server it was given)."""
    mute = (
        f"{{ [ ! -e {RESOLVCONF} ] || mount --bind /bin/true {RESOLVCONF}; }} && " if mute_resolvconf else ""
    )
    inner = (
        f"mount --make-rprivate / && mount -t tmpfs tmpfs /run && {mute}"
        f"exec env STRONGSWAN_CONF={workdir / 'strongswan.conf'} {CHARON}"
    )
    return ["ip", "netns", "exec", namespace, "unshare", "-m", "sh", "-c", inner]


def swanctl_command(workdir: Path, *args: str) -> list[str]:
    return [
        "env",
        f"STRONGSWAN_CONF={workdir / 'strongswan.conf'}",
        SWANCTL,
        *args,
        "--uri",
        vici_uri(workdir),
    ]
