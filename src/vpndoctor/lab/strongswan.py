"""strongSwan (charon + swanctl) configuration for the lab's IKEv2 responders and its test initiator.

Each charon runs in its own network namespace and its own mount namespace with a private /run (charon's
pid file path is compiled in); its vici socket lives in the lab's state directory so that swanctl reaches
it from outside.
"""

from __future__ import annotations

from pathlib import Path

from vpndoctor.lab import topology as t
from vpndoctor.lab.scenario import Scenario

CHARON = "/usr/lib/ipsec/charon"
SWANCTL = "/usr/sbin/swanctl"

# The openssl plugin brings 3DES, AES-GCM, ECP and X25519; the rest are strongSwan's own. No
# kernel-libipsec: it would make charon fake NAT_DETECTION_SOURCE_IP to force UDP encapsulation, and the
# lab must show NAT only where the network really translates. (CHILD_SAs cannot be installed here - the
# kernel has no XFRM - so the lab's clients authenticate childless and probes stop at EAP.)
PLUGINS = (
    "random nonce openssl pem pkcs1 pkcs8 x509 pubkey revocation constraints sha1 sha2 md5 hmac gmp "
    "aes gcm kdf socket-default kernel-netlink vici eap-identity eap-mschapv2"
)

# Pools hand out addresses from documentation ranges; each backend has its own.
POOLS = {
    "vpn1": ("203.0.113.128/26", "2001:db8:ff01::/112"),
    "vpn2": ("203.0.113.192/26", "2001:db8:ff02::/112"),
}

ESP_PROPOSALS = "aes256-sha256,aes128-sha256,aes256gcm16,aes128gcm16,aes256-sha1,3des-sha1,default"


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


def strongswan_conf(workdir: Path, s: Scenario | None) -> str:
    """strongswan.conf for one charon. `s` is None for the lab's initiator."""
    frag = s.fragment_size_bytes if s is not None else 1280
    # The lab's own client (not a system under test) gives up quickly; responders keep charon's defaults.
    retransmit = (
        "  retransmit_tries = 3\n  retransmit_timeout = 1.0\n  retransmit_base = 1.4\n" if s is None else ""
    )
    return f"""# written by vpndoctor lab
charon {{
  load_modular = no
  load = {PLUGINS}
  install_routes = no
  install_virtual_ip = no
{retransmit}{dos_settings(s)}  fragment_size = {frag}
  plugins {{
    vici {{
      socket = {vici_uri(workdir)}
    }}
  }}
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


def responder_swanctl_conf(backend: str, s: Scenario) -> str:
    pool4, pool6 = POOLS[backend]
    frag = "yes" if s.server_fragmentation else "no"
    return f"""# written by vpndoctor lab: an Always On VPN user-tunnel style responder
connections {{
  aovpn {{
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
      auth = eap-mschapv2
      eap_id = %any
    }}
    children {{
      aovpn {{
        local_ts = 0.0.0.0/0, ::/0
        esp_proposals = {ESP_PROPOSALS}
      }}
    }}
  }}
}}
pools {{
  pool4 {{
    addrs = {pool4}
  }}
  pool6 {{
    addrs = {pool6}
  }}
}}
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


def charon_command(namespace: str, workdir: Path) -> list[str]:
    """The command that starts charon in `namespace` with a private /run."""
    inner = (
        "mount --make-rprivate / && mount -t tmpfs tmpfs /run && "
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
