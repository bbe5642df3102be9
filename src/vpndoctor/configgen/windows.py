"""Windows: one PowerShell script for the VPN server (IKEv2 fragmentation behind its OS-version guard, the
IKE policy with `Set-VpnServerConfiguration -CustomPolicy`, the root CA with `Set-VpnAuthProtocol
-RootCertificateNameToAccept`, the IKEEXT parameter a load balancer needs, firewall rules), the matching
ProfileXML `<CryptographySuite>` for clients (CSP spellings, see crypto.py), and DirectAccess manage-out
firewall rules scoped to the ISATAP prefix (vpndoctor.addresses computes the prefixes and netsh commands).
Every cmdlet and netsh line is checked against `data/commands.yaml` by the validator.
"""

from __future__ import annotations

from collections.abc import Sequence

from vpndoctor.addresses import firewall_commands, isatap_prefix, powershell_quote
from vpndoctor.configgen.common import header
from vpndoctor.configgen.model import Deployment

# Windows Server 1803 (build 17134) brought IKEv2 fragmentation to RRAS; 2019 is 17763.
FRAGMENTATION_MIN_BUILD = 17134
RAS_IKEV2_KEY = r"HKLM:\SYSTEM\CurrentControlSet\Services\RemoteAccess\Parameters\Ikev2"
IKEEXT_KEY = r"HKLM:\SYSTEM\CurrentControlSet\Services\IKEEXT\Parameters"


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
