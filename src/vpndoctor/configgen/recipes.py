"""The recipes of the field guides, which targets implement each, and which apply to a deployment.

A recipe is a named piece of configuration (`iphttps-offload`, `ikev2-lb`, ...); a target is the device or
system the configuration is for. By default a target emits every recipe it implements that applies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from vpndoctor.configgen.model import Deployment
from vpndoctor.errors import UsageError


@dataclass(frozen=True)
class Recipe:
    name: str
    title: str
    applies: Callable[[Deployment], bool]
    why_not: str  # said when a recipe is asked for explicitly but does not apply


RECIPES: Final = {
    r.name: r
    for r in (
        Recipe(
            "iphttps-offload",
            "DirectAccess IP-HTTPS: TLS offload with NULL suites to the servers, client-certificate"
            " preauthentication",
            lambda d: d.has("iphttps"),
            "iphttps is not among protocols",
        ),
        Recipe(
            "ikev2-lb",
            "IKEv2: UDP 500 and UDP 4500 of one client on the same server (source-address affinity)",
            lambda d: d.has("ikev2"),
            "ikev2 is not among protocols",
        ),
        Recipe(
            "sstp-lb",
            "SSTP: TCP 443 passed through with SSL-session / source-address persistence",
            lambda d: d.has("sstp"),
            "sstp is not among protocols",
        ),
        Recipe(
            "edge-firewall",
            "Edge firewall: TCP 443, UDP 500/4500 and ESP to the VIP, DNAT, IP fragments allowed",
            lambda d: True,
            "",
        ),
        Recipe(
            "windows-server",
            "Windows VPN server: IKEv2 fragmentation, IKE policy, root CA, IKEEXT behind a load balancer",
            lambda d: d.has("ikev2") or d.has("sstp"),
            "neither ikev2 nor sstp is among protocols",
        ),
        Recipe(
            "windows-client-profile",
            "Always On VPN ProfileXML <CryptographySuite> matching the server's IKE policy",
            lambda d: d.has("ikev2"),
            "ikev2 is not among protocols",
        ),
        Recipe(
            "isatap-firewall",
            "DirectAccess manage-out: firewall rules restricted to the ISATAP prefix",
            lambda d: d.windows.isatap is not None,
            "windows.isatap is not set in the input",
        ),
    )
}

TARGETS: Final[dict[str, tuple[str, ...]]] = {
    "netscaler": ("iphttps-offload", "ikev2-lb", "sstp-lb"),
    "f5": ("iphttps-offload", "ikev2-lb", "sstp-lb"),
    "kemp": ("iphttps-offload", "ikev2-lb", "sstp-lb"),
    "haproxy": ("iphttps-offload", "sstp-lb"),
    "nginx": ("iphttps-offload", "ikev2-lb", "sstp-lb"),
    "nftables": ("edge-firewall", "ikev2-lb", "sstp-lb"),
    "keepalived": ("ikev2-lb", "sstp-lb"),
    "windows": ("windows-server", "windows-client-profile", "isatap-firewall"),
}

_WHY_TARGET: Final = {
    ("haproxy", "ikev2-lb"): "HAProxy does not balance UDP; use nginx, nftables or keepalived for IKEv2",
}


def select(target: str, d: Deployment, asked: Sequence[str] | None) -> list[str]:
    """The recipes to emit for `target`: `asked` (validated) or every implemented recipe that applies."""
    if target not in TARGETS:
        raise UsageError(f"unknown target {target!r}; expected one of {', '.join(TARGETS)}")
    implemented = TARGETS[target]
    if not asked:
        chosen = [r for r in implemented if RECIPES[r].applies(d)]
        if not chosen:
            raise UsageError(
                f"nothing to generate for {target}: none of its recipes ({', '.join(implemented)}) applies to"
                f" protocols {', '.join(d.protocols)}"
            )
        return chosen
    out: list[str] = []
    for name in asked:
        if name not in RECIPES:
            raise UsageError(f"unknown recipe {name!r}; expected one of {', '.join(RECIPES)}")
        if name not in implemented:
            why = _WHY_TARGET.get((target, name), f"{target} implements {', '.join(implemented)}")
            raise UsageError(f"recipe {name} is not available for {target}: {why}")
        if not RECIPES[name].applies(d):
            raise UsageError(f"recipe {name} does not apply to this input: {RECIPES[name].why_not}")
        if name not in out:
            out.append(name)
    return out
