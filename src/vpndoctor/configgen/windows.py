"""Windows: one PowerShell script for the VPN server (IKEv2 fragmentation behind its OS-version guard, the
IKE policy with `Set-VpnServerConfiguration -CustomPolicy`, the root CA with `Set-VpnAuthProtocol
-RootCertificateNameToAccept`, the IKEEXT parameter a load balancer needs, firewall rules), the matching
ProfileXML `<CryptographySuite>` for clients (CSP spellings, see crypto.py), and DirectAccess manage-out
firewall rules scoped to the ISATAP prefix (vpndoctor.windows.addresses computes the prefixes; the
PowerShell and netsh commands that scope existing rules to them are written here, for `vpndoctor isatap
prefix` too).
Every cmdlet and netsh line is checked against `data/commands.yaml` by the validator.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence

from vpndoctor.configgen.common import header
from vpndoctor.configgen.model import Deployment
from vpndoctor.errors import UsageError
from vpndoctor.windows.addresses import _show, isatap_prefix

# Windows Server 1803 (build 17134) brought IKEv2 fragmentation to RRAS; 2019 is 17763.
FRAGMENTATION_MIN_BUILD = 17134
RAS_IKEV2_KEY = r"HKLM:\SYSTEM\CurrentControlSet\Services\RemoteAccess\Parameters\Ikev2"
IKEEXT_KEY = r"HKLM:\SYSTEM\CurrentControlSet\Services\IKEEXT\Parameters"
# The rule `vpndoctor isatap prefix` scopes when given none (RDP is what manage-out is most often for).
DEFAULT_RULE = "Remote Desktop - User Mode (TCP-In)"


def render(d: Deployment, recipes: Sequence[str]) -> str:
    out = [
        header("windows", d, recipes).rstrip("\n"),
        "#Requires -RunAsAdministrator",
        "$ErrorActionPreference = 'Stop'",
    ]
    if "windows-server" in recipes:
        out += _server(d)
    if "windows-client-profile" in recipes:
        out += _client(d)
    if "isatap-firewall" in recipes:
        out += _isatap(d)
    return "\n".join(out) + "\n"


def _server(d: Deployment) -> list[str]:
    w = d.windows
    p = w.ike_policy
    out = ["", "# --- windows-server: run on each VPN server"]
    if w.server_fragmentation and d.has("ikev2"):
        out += [
            "# IKEv2 fragmentation (RFC 7383): the certificate-bearing IKE_AUTH no longer needs IP fragments",
            "$build = [System.Environment]::OSVersion.Version.Build",
            f"if ($build -ge {FRAGMENTATION_MIN_BUILD}) {{",
            f"    if (-not (Test-Path -Path '{RAS_IKEV2_KEY}')) {{"
            f" New-Item -Path '{RAS_IKEV2_KEY}' | Out-Null }}",
            f"    New-ItemProperty -Path '{RAS_IKEV2_KEY}' -Name EnableServerFragmentation"
            " -PropertyType DWORD"
            " -Value 1 -Force",
            "} else {",
            f'    Write-Warning "Windows build $build has no IKEv2 fragmentation'
            f" (needs {FRAGMENTATION_MIN_BUILD}+, Windows Server 1803/2019): let IP fragments through the"
            ' firewalls instead"',
            "}",
        ]
    if d.has("ikev2"):
        cmdlet = " ".join(f"-{k} {v}" for k, v in p.cmdlet_values().items())
        out += [
            "# IKE policy; clients need the same values in their ProfileXML <CryptographySuite> (below)",
            f"Set-VpnServerConfiguration -CustomPolicy {cmdlet} -SALifeTimeSeconds {p.sa_lifetime_s}"
            f" -MMSALifeTimeSeconds {p.mm_sa_lifetime_s} -SADataSizeForRenegotiationKilobytes {p.sa_data_kib}"
            " -PassThru",
        ]
    ca = d.certificates.ca
    subject = ca.subject or f"CN={ca.name}"
    missing = powershell_quote(subject + " is not in Cert:\\LocalMachine\\Root")
    out += [
        "# accept client (machine) certificates only from this root CA",
        "$root = Get-ChildItem -Path Cert:\\LocalMachine\\Root | Where-Object Subject -eq"
        f" {powershell_quote(subject)}",
        f"if (-not $root) {{ throw {missing} }}",
        "Set-VpnAuthProtocol -RootCertificateNameToAccept $root -PassThru",
    ]
    if w.ike_established_for_initial_query is not None and d.has("ikev2"):
        out += [
            "# behind a load balancer many clients can share one source address; IKEEXT then throttles new",
            "# IKE SAs from it (error 809) unless this limit is raised",
            f"New-ItemProperty -Path '{IKEEXT_KEY}' -Name IkeNumEstablishedForInitialQuery"
            " -PropertyType DWORD"
            f" -Value {w.ike_established_for_initial_query} -Force",
        ]
    out.append("# inbound VPN ports")
    if d.has("ikev2"):
        out.append(
            "New-NetFirewallRule -DisplayName 'vpndoctor IKEv2 (UDP 500, 4500)' -Direction Inbound"
            " -Protocol UDP"
            " -LocalPort 500,4500 -Action Allow -Profile Any"
        )
    if d.has("sstp") or d.has("iphttps"):
        out.append(
            "New-NetFirewallRule -DisplayName 'vpndoctor SSTP/IP-HTTPS (TCP 443)' -Direction Inbound"
            " -Protocol TCP"
            " -LocalPort 443 -Action Allow -Profile Any"
        )
    out.append("# the settings above take effect when RemoteAccess restarts (connected clients are dropped)")
    out.append("Restart-Service -Name RemoteAccess -PassThru")
    return out


def _client(d: Deployment) -> list[str]:
    p = d.windows.ike_policy
    cmdlet = " ".join(f"-{k} {v}" for k, v in p.cmdlet_values().items())
    suite = p.cryptography_suite_xml("    ")
    return [
        "",
        "# --- windows-client-profile: the same policy for Always On VPN clients",
        "# ProfileXML (Intune / VPNv2 CSP) spells some values differently from the cmdlets",
        "# (IntegrityCheckMethod SHA1 -> SHA196, EncryptionMethod GCMAES128 -> AES_GCM_128): put this inside",
        f"# <NativeProfile>; it offers {p.strongswan_proposal()} (strongSwan notation)",
        "$CryptographySuite = @'",
        suite,
        "'@",
        "# a connection created by hand on one client (testing):",
        f"# Set-VpnConnectionIPsecConfiguration -ConnectionName {powershell_quote(d.name)} {cmdlet} -Force",
    ]


def _isatap(d: Deployment) -> list[str]:
    isatap = d.windows.isatap
    assert isatap is not None
    prefixes: list[str] = []
    for a in isatap.addresses:
        for p in isatap_prefix(a).prefixes(isatap.public_ipv4):
            if p not in prefixes:
                prefixes.append(p)
    remote = ",".join(prefixes)
    out = [
        "",
        "# --- isatap-firewall: on DirectAccess clients (or in their GPO), allow manage-out only from the",
        f"# ISATAP prefix{'es' if len(prefixes) > 1 else ''} of the management hosts: {', '.join(prefixes)}",
    ]
    for rule in isatap.new_rules:
        proto, port = rule.split("/")
        out.append(
            f"New-NetFirewallRule -DisplayName 'vpndoctor manage-out {proto.upper()} {port}'"
            " -Direction Inbound"
            f" -Protocol {proto.upper()} -LocalPort {port} -RemoteAddress {remote} -Action Allow -Profile Any"
        )
    commands = firewall_commands(prefixes, isatap.rules)
    out += [c for c in commands if not c.startswith("netsh")]
    out.append("# the same with netsh (cmd.exe):")
    out += [f"# {c}" for c in commands if c.startswith("netsh")]
    for rule in isatap.new_rules:
        proto, port = rule.split("/")
        out.append(
            f'# netsh advfirewall firewall add rule name="vpndoctor manage-out {proto.upper()} {port}" dir=in'
            f" action=allow protocol={proto.upper()} localport={port} remoteip={remote}"
        )
    return out


# -------------------------------------------------------------------------------------- firewall commands


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_PS_DOUBLE_SPECIAL = re.compile('["`$\u201c\u201d\u201e]')  # PowerShell treats curly quotes as quotes too
_PS_SINGLE_QUOTES = re.compile("['\u2018\u2019\u201a\u201b]")
_PS_WILDCARD = re.compile(r"[*?\[\]]")


def _check_rule_names(rule_names: Iterable[str]) -> list[str]:
    names: list[str] = []
    for name in rule_names:
        if not isinstance(name, str) or not name.strip():
            raise UsageError(
                "empty firewall rule name; expected a display name such as " + repr(DEFAULT_RULE)
            )
        if _CONTROL.search(name):
            raise UsageError(f"firewall rule name {_show(name)} contains a control character")
        if name not in names:
            names.append(name)
    if not names:
        raise UsageError(f"no firewall rule names given; expected e.g. {DEFAULT_RULE!r}")
    return names


def _check_prefixes(prefixes: Iterable[str]) -> list[str]:
    out: list[str] = []
    for p in prefixes:
        try:
            net = ipaddress.ip_network(str(p).strip(), strict=True)
        except ValueError:
            raise UsageError(
                f"{_show(str(p))} is not an IP prefix; expected e.g. 2001:db8:1:8000:0:5efe::/96"
            ) from None
        if str(net) not in out:
            out.append(str(net))
    if not out:
        raise UsageError(
            "no prefixes given; expected ISATAP /96 prefixes such as 2001:db8:1:8000:0:5efe::/96"
        )
    return out


def powershell_quote(text: str) -> str:
    """A PowerShell string literal for `text`: double quotes when nothing in it is special there, else single
    quotes with every kind of single quote doubled (the only escape a single-quoted string has)."""
    if not _PS_DOUBLE_SPECIAL.search(text):
        return f'"{text}"'
    return "'" + _PS_SINGLE_QUOTES.sub(lambda m: m.group(0) * 2, text) + "'"


def powershell_command(rule_name: str, prefixes: Sequence[str]) -> str:
    """Set-NetFirewallRule scoping one rule (by display name) to the prefixes."""
    name = _check_rule_names([rule_name])[0]
    remote = ",".join(_check_prefixes(prefixes))
    if _PS_WILDCARD.search(name):
        # -DisplayName takes wildcards; match such names exactly instead of guessing at escapes.
        return (
            f"Get-NetFirewallRule | Where-Object DisplayName -eq {powershell_quote(name)} |"
            f" Set-NetFirewallRule -RemoteAddress {remote} -Profile Private,Public"
        )
    return (
        f"Set-NetFirewallRule -DisplayName {powershell_quote(name)} -RemoteAddress {remote}"
        " -Profile Private,Public"
    )


def netsh_command(rule_name: str, prefixes: Sequence[str]) -> str:
    """The `netsh advfirewall` equivalent (cmd.exe syntax) for one rule."""
    name = _check_rule_names([rule_name])[0]
    if '"' in name or "%" in name:
        # cmd.exe has no escape for '"' inside quotes and expands %VAR% even there.
        raise UsageError(
            f"firewall rule name {_show(name)} contains '\"' or '%', which netsh cannot be given safely;"
            " rename the rule"
        )
    remote = ",".join(_check_prefixes(prefixes))
    return f'netsh advfirewall firewall set rule name="{name}" new remoteip={remote}'


def firewall_commands(prefixes: Sequence[str], rule_names: Sequence[str]) -> list[str]:
    """PowerShell commands for every rule, then the netsh equivalents, scoping the rules to `prefixes`."""
    names = _check_rule_names(rule_names)
    nets = _check_prefixes(prefixes)
    return [powershell_command(n, nets) for n in names] + [netsh_command(n, nets) for n in names]
