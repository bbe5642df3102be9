"""ProfileXML parsing and the Windows CryptographySuite -> IKEv2 proposal translation."""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from vpndoctor.errors import UsageError
from vpndoctor.ike.proposals import parse_proposal
from vpndoctor.windows.profile import (
    CryptographySuite,
    ProfileError,
    VpnProfile,
    ike_error_code_if_rejected,
    load_profile,
    parse_profile_xml,
    parse_servers,
)

# A typical AOVPN user tunnel as deployed through Intune's VPNv2 CSP (PEAP/EAP-TLS, split tunnel, custom
# IKE/ESP crypto as recommended for RRAS with Set-VpnServerConfiguration -CustomPolicy).
USER_TUNNEL = """<?xml version="1.0" encoding="utf-8"?>
<VPNProfile>
  <RememberCredentials>true</RememberCredentials>
  <AlwaysOn>true</AlwaysOn>
  <DnsSuffix>corp.example.net</DnsSuffix>
  <TrustedNetworkDetection>corp.example.net</TrustedNetworkDetection>
  <NativeProfile>
    <Servers>vpn.example.net;vpn.example.net</Servers>
    <RoutingPolicyType>SplitTunnel</RoutingPolicyType>
    <NativeProtocolType>Ikev2</NativeProtocolType>
    <DisableClassBasedDefaultRoute>true</DisableClassBasedDefaultRoute>
    <Authentication>
      <UserMethod>Eap</UserMethod>
      <Eap>
        <Configuration>
          <EapHostConfig xmlns="http://www.microsoft.com/provisioning/EapHostConfig">
            <EapMethod>
              <Type xmlns="http://www.microsoft.com/provisioning/EapCommon">25</Type>
              <VendorId xmlns="http://www.microsoft.com/provisioning/EapCommon">0</VendorId>
              <VendorType xmlns="http://www.microsoft.com/provisioning/EapCommon">0</VendorType>
              <AuthorId xmlns="http://www.microsoft.com/provisioning/EapCommon">0</AuthorId>
            </EapMethod>
            <Config xmlns="http://www.microsoft.com/provisioning/EapHostConfig">
              <Eap xmlns="http://www.microsoft.com/provisioning/BaseEapConnectionPropertiesV1">
                <Type>25</Type>
                <EapType xmlns="http://www.microsoft.com/provisioning/MsPeapConnectionPropertiesV1">
                  <ServerValidation>
                    <DisableUserPromptForServerValidation>true</DisableUserPromptForServerValidation>
                    <ServerNames>nps.corp.example.net</ServerNames>
                    <TrustedRootCA>5a 1b 2c 3d 4e 5f 60 71 82 93 a4 b5 c6 d7 e8 f9 0a 1b 2c 3d</TrustedRootCA>
                  </ServerValidation>
                  <FastReconnect>true</FastReconnect>
                </EapType>
              </Eap>
            </Config>
          </EapHostConfig>
        </Configuration>
      </Eap>
    </Authentication>
    <CryptographySuite>
      <AuthenticationTransformConstants>SHA256128</AuthenticationTransformConstants>
      <CipherTransformConstants>AES256</CipherTransformConstants>
      <EncryptionMethod>AES256</EncryptionMethod>
      <IntegrityCheckMethod>SHA256</IntegrityCheckMethod>
      <DHGroup>Group14</DHGroup>
      <PfsGroup>PFS2048</PfsGroup>
    </CryptographySuite>
  </NativeProfile>
  <Route>
    <Address>10.0.0.0</Address>
    <PrefixSize>8</PrefixSize>
  </Route>
  <DomainNameInformation>
    <DomainName>.corp.example.net</DomainName>
    <DnsServers>10.1.1.10,10.1.1.11</DnsServers>
  </DomainNameInformation>
</VPNProfile>
"""

# A device tunnel with GCM: two gateways with friendly names, machine certificate, namespaced root.
DEVICE_TUNNEL_GCM = """<VPNProfile xmlns="http://schemas.microsoft.com/vpn/2016">
  <NativeProfile>
    <Servers>vpn1.example.net;Gateway One,vpn2.example.net;Gateway Two</Servers>
    <NativeProtocolType>IKEv2</NativeProtocolType>
    <Authentication><MachineMethod>Certificate</MachineMethod></Authentication>
    <RoutingPolicyType>SplitTunnel</RoutingPolicyType>
    <CryptographySuite>
      <AuthenticationTransformConstants>GCMAES128</AuthenticationTransformConstants>
      <CipherTransformConstants>GCMAES128</CipherTransformConstants>
      <EncryptionMethod>GCMAES128</EncryptionMethod>
      <IntegrityCheckMethod>SHA256</IntegrityCheckMethod>
      <DHGroup>ECP256</DHGroup>
      <PfsGroup>ECP256</PfsGroup>
    </CryptographySuite>
  </NativeProfile>
  <AlwaysOn>true</AlwaysOn>
  <DeviceTunnel>true</DeviceTunnel>
  <RegisterDNS>true</RegisterDNS>
</VPNProfile>
"""

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE VPNProfile [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<VPNProfile><NativeProfile><Servers>&lol9;</Servers></NativeProfile></VPNProfile>
"""


def _syncml(profile_xml: str, *, cdata: bool) -> str:
    data = f"<![CDATA[{profile_xml}]]>" if cdata else escape(profile_xml)
    return f"""<SyncML xmlns="SYNCML:SYNCML1.2">
  <SyncBody>
    <Add>
      <CmdID>10001</CmdID>
      <Item>
        <Target><LocURI>./User/Vendor/MSFT/VPNv2/Contoso%20VPN/ProfileXML</LocURI></Target>
        <Meta><Format xmlns="syncml:metinf">chr</Format></Meta>
        <Data>{data}</Data>
      </Item>
    </Add>
    <Final/>
  </SyncBody>
</SyncML>"""


def _suite(enc: str = "AES256", integ: str = "SHA256", dh: str = "Group14") -> CryptographySuite:
    return CryptographySuite(encryption_method=enc, integrity_check_method=integ, dh_group=dh)


def _one_line_error(excinfo: pytest.ExceptionInfo[ProfileError]) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and message
    return message


# -- whole profiles --------------------------------------------------------------------------------------


def test_user_tunnel_profile() -> None:
    profile = parse_profile_xml(USER_TUNNEL)
    assert profile == VpnProfile(
        servers=("vpn.example.net",),
        protocol="IKEv2",
        cryptography_suite=CryptographySuite(
            encryption_method="AES256",
            integrity_check_method="SHA256",
            dh_group="Group14",
            authentication_transform_constants="SHA256128",
            cipher_transform_constants="AES256",
            pfs_group="PFS2048",
        ),
        user_method="Eap",
        machine_method=None,
        routing_policy="SplitTunnel",
        device_tunnel=False,
        disable_class_based_default_route=True,
    )
    assert profile.cryptography_suite is not None
    proposal = profile.cryptography_suite.ike_proposal()
    assert proposal == "aes256-sha256-modp2048"
    parse_proposal(proposal)


def test_device_tunnel_gcm_profile_with_namespace() -> None:
    profile = parse_profile_xml(DEVICE_TUNNEL_GCM.encode())
    assert profile.servers == ("vpn1.example.net", "vpn2.example.net")
    assert profile.protocol == "IKEv2"
    assert profile.machine_method == "Certificate"
    assert profile.user_method is None
    assert profile.device_tunnel is True
    assert profile.disable_class_based_default_route is None
    assert profile.cryptography_suite is not None
    proposal = profile.cryptography_suite.ike_proposal()
    assert proposal == "aes128gcm16-prfsha256-ecp256"
    spec = parse_proposal(proposal)
    assert spec.integ == ()  # AEAD: no integrity transform


def test_missing_cryptography_suite_is_none() -> None:
    profile = parse_profile_xml(
        "<VPNProfile><NativeProfile><Servers>vpn.example.net</Servers>"
        "<NativeProtocolType>Sstp</NativeProtocolType></NativeProfile></VPNProfile>"
    )
    assert profile.cryptography_suite is None
    assert profile.protocol == "SSTP"
    assert profile.routing_policy is None


def test_plugin_profile_has_no_native_facts() -> None:
    profile = parse_profile_xml(
        "<VPNProfile><PluginProfile><ServerUrlList>vpn.example.net</ServerUrlList>"
        "<PluginPackageFamilyName>Vendor.VPN_abc</PluginPackageFamilyName></PluginProfile></VPNProfile>"
    )
    assert profile.servers == ()
    assert profile.protocol is None
    assert profile.cryptography_suite is None


@pytest.mark.parametrize(
    ("value", "protocol"),
    [
        ("Automatic", "Automatic"),
        ("automatic", "Automatic"),
        ("ProtocolList", "ProtocolList"),
        ("Sstp", "SSTP"),
        ("Ikev2", "IKEv2"),
        ("SomethingNew", "SomethingNew"),
    ],
)
def test_protocol_spellings(value: str, protocol: str) -> None:
    native = f"<NativeProfile><NativeProtocolType>{value}</NativeProtocolType></NativeProfile>"
    assert parse_profile_xml(f"<VPNProfile>{native}</VPNProfile>").protocol == protocol


def test_lower_case_element_names_are_tolerated() -> None:
    profile = parse_profile_xml(
        "<vpnProfile><nativeProfile><servers>vpn.example.net</servers></nativeProfile></vpnProfile>"
    )
    assert profile.servers == ("vpn.example.net",)


# -- embedded forms --------------------------------------------------------------------------------------


@pytest.mark.parametrize("cdata", [False, True], ids=["escaped", "cdata"])
def test_profile_inside_syncml(cdata: bool) -> None:
    profile = parse_profile_xml(_syncml(USER_TUNNEL.split("\n", 1)[1], cdata=cdata))
    assert profile == parse_profile_xml(USER_TUNNEL)


def test_escaped_profile_alone() -> None:
    # What is left after copying the value of an OMA-URI setting out of an export.
    assert parse_profile_xml(escape(DEVICE_TUNNEL_GCM)) == parse_profile_xml(DEVICE_TUNNEL_GCM)


def test_profile_inside_powershell_script() -> None:
    script = (
        "$ProfileName = 'Contoso VPN'\n$ProfileXML = @'\n" + DEVICE_TUNNEL_GCM + "'@\n"
        "$Session = New-CimSession\n"
    )
    assert parse_profile_xml(script) == parse_profile_xml(DEVICE_TUNNEL_GCM)


def test_utf16_file_with_a_wrong_declaration(tmp_path: Path) -> None:
    # Windows PowerShell 5.1's Out-File: UTF-16 LE with a BOM, the declaration still saying utf-8.
    path = tmp_path / "profile.xml"
    path.write_bytes(USER_TUNNEL.encode("utf-16"))
    assert load_profile(str(path)) == parse_profile_xml(USER_TUNNEL)


def test_two_profiles_are_ambiguous() -> None:
    doc = f"<Export><Item>{escape(USER_TUNNEL.split(chr(10), 1)[1])}</Item>{DEVICE_TUNNEL_GCM}</Export>"
    with pytest.raises(ProfileError, match="2 <VPNProfile> documents") as excinfo:
        parse_profile_xml(doc)
    _one_line_error(excinfo)


def test_broken_mention_beside_a_real_profile_is_ignored() -> None:
    doc = f"<Export><Note>see &lt;VPNProfile&gt; below</Note>{DEVICE_TUNNEL_GCM}</Export>"
    assert parse_profile_xml(doc) == parse_profile_xml(DEVICE_TUNNEL_GCM)
    with pytest.raises(ProfileError, match=r"^ProfileXML \(ProfileXML inside <note>\): not well-formed XML"):
        parse_profile_xml("<Export><Note>see &lt;VPNProfile&gt; below</Note></Export>")


@pytest.mark.timeout(10)
def test_many_unclosed_profile_tags_are_quick() -> None:
    with pytest.raises(ProfileError, match="not well-formed"):
        parse_profile_xml("x" + "<VPNProfile><?xml " * 200_000)


def test_no_profile_element() -> None:
    with pytest.raises(ProfileError, match=r"no <VPNProfile> element found \(root is <syncml>\)") as excinfo:
        parse_profile_xml("<SyncML><SyncBody/></SyncML>")
    _one_line_error(excinfo)


# -- hostile and broken input ----------------------------------------------------------------------------


def test_malformed_xml_is_one_line() -> None:
    with pytest.raises(ProfileError, match=r"^ProfileXML: not well-formed XML \(mismatched tag") as excinfo:
        parse_profile_xml("<VPNProfile>\n<NativeProfile>\n</VPNProfile>\n")
    _one_line_error(excinfo)
    assert isinstance(excinfo.value, UsageError)


def test_malformed_profile_with_declaration_is_reported_as_is() -> None:
    with pytest.raises(ProfileError, match=r"^ProfileXML: not well-formed XML \(mismatched tag: line 2,"):
        parse_profile_xml('<?xml version="1.0"?>\n<VPNProfile><NativeProfile></VPNProfile>')


def test_malformed_profile_inside_a_script_names_the_embedded_text() -> None:
    script = "$ProfileXML = @'\n<VPNProfile><NativeProfile></VPNProfile>\n'@\n"
    expected = r"^ProfileXML \(the <VPNProfile> text inside it\): not well-formed"
    with pytest.raises(ProfileError, match=expected):
        parse_profile_xml(script)


def test_empty_document() -> None:
    with pytest.raises(ProfileError, match="not well-formed XML"):
        parse_profile_xml(b"")


@pytest.mark.timeout(10)
def test_billion_laughs_is_refused_not_expanded() -> None:
    with pytest.raises(ProfileError, match="refusing XML with entity declarations") as excinfo:
        parse_profile_xml(BILLION_LAUGHS)
    _one_line_error(excinfo)


@pytest.mark.timeout(10)
def test_billion_laughs_escaped_inside_syncml_is_refused() -> None:
    with pytest.raises(ProfileError, match="refusing XML with entity declarations"):
        parse_profile_xml(_syncml(BILLION_LAUGHS, cdata=False))


def test_external_entity_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("vpn.attacker.example")
    doc = (
        f'<!DOCTYPE VPNProfile [<!ENTITY x SYSTEM "file://{secret}">]>'
        "<VPNProfile><NativeProfile><Servers>&x;</Servers></NativeProfile></VPNProfile>"
    )
    with pytest.raises(ProfileError, match="refusing"):
        parse_profile_xml(doc)


def test_load_profile_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.xml"
    with pytest.raises(ProfileError, match=f"^cannot read ProfileXML {missing}: ") as excinfo:
        load_profile(str(missing))
    _one_line_error(excinfo)


def test_load_profile_names_the_file_in_parse_errors(tmp_path: Path) -> None:
    path = tmp_path / "broken.xml"
    path.write_text("<VPNProfile><NativeProfile>")
    with pytest.raises(ProfileError, match=f"^ProfileXML {path}: not well-formed XML"):
        load_profile(str(path))


def test_oversized_input_is_refused() -> None:
    with pytest.raises(ProfileError, match="too large"):
        parse_profile_xml(b"<VPNProfile>" + b" " * (5 * 1024 * 1024) + b"</VPNProfile>")


# -- CryptographySuite -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("enc", "token"),
    [
        ("DES3", "3des"),
        ("AES128", "aes128"),
        ("AES192", "aes192"),
        ("AES256", "aes256"),
        ("aes256", "aes256"),
        ("GCMAES128", "aes128gcm16"),
        ("GCMAES256", "aes256gcm16"),
        ("AES_GCM_128", "aes128gcm16"),
        ("AES_GCM_256", "aes256gcm16"),
        ("aes_gcm_256", "aes256gcm16"),
    ],
)
def test_encryption_mapping(enc: str, token: str) -> None:
    proposal = _suite(enc=enc).ike_proposal()
    assert proposal.split("-")[0] == token
    parse_proposal(proposal)


@pytest.mark.parametrize(
    ("integ", "cbc", "gcm"),
    [
        ("SHA196", "sha1", "prfsha1"),
        ("SHA1", "sha1", "prfsha1"),
        ("SHA256", "sha256", "prfsha256"),
        ("sha256", "sha256", "prfsha256"),
        ("SHA384", "sha384", "prfsha384"),
    ],
)
def test_integrity_mapping(integ: str, cbc: str, gcm: str) -> None:
    with_cbc = _suite(integ=integ).ike_proposal()
    with_gcm = _suite(enc="GCMAES256", integ=integ).ike_proposal()
    assert with_cbc == f"aes256-{cbc}-modp2048"
    assert with_gcm == f"aes256gcm16-{gcm}-modp2048"
    parse_proposal(with_cbc)
    parse_proposal(with_gcm)


@pytest.mark.parametrize(
    ("dh", "token"),
    [
        ("Group2", "modp1024"),
        ("Group14", "modp2048"),
        ("group14", "modp2048"),
        ("ECP256", "ecp256"),
        ("ECP384", "ecp384"),
    ],
)
def test_dh_mapping(dh: str, token: str) -> None:
    proposal = _suite(dh=dh).ike_proposal()
    assert proposal.split("-")[-1] == token
    parse_proposal(proposal)


@pytest.mark.parametrize(
    ("field", "value", "element"),
    [
        ("enc", "DES", "EncryptionMethod"),
        ("integ", "MD5", "IntegrityCheckMethod"),
        ("dh", "Group1", "DHGroup"),
        ("dh", "Group24", "DHGroup"),
        ("dh", "None", "DHGroup"),
    ],
)
def test_values_without_ikev2_equivalent(field: str, value: str, element: str) -> None:
    with pytest.raises(ProfileError, match=f"^<{element}> '{value}' has no IKEv2 equivalent") as excinfo:
        _suite(**{field: value}).ike_proposal()
    _one_line_error(excinfo)


def test_known_but_unsupported_values_still_parse() -> None:
    # A valid Windows profile: only asking for the IKE proposal fails.
    xml = USER_TUNNEL.replace("<DHGroup>Group14</DHGroup>", "<DHGroup>Group24</DHGroup>")
    profile = parse_profile_xml(xml)
    assert profile.cryptography_suite is not None
    with pytest.raises(ProfileError, match="modp768|Group24"):
        profile.cryptography_suite.ike_proposal()


@pytest.mark.parametrize(
    ("element", "good", "bad", "accepted"),
    [
        ("EncryptionMethod", "AES256", "AES512", "DES, DES3, AES128, AES192, AES256, GCMAES128"),
        ("IntegrityCheckMethod", "SHA256", "SHA512", "MD5, SHA196, SHA1, SHA256, SHA384"),
        ("DHGroup", "Group14", "Group19", "None, Group1, Group2, Group14, ECP256, ECP384, Group24"),
        ("PfsGroup", "PFS2048", "PFS14", "PFS1, PFS2, PFS2048, ECP256, ECP384, PFSMM, PFS24, None"),
        ("CipherTransformConstants", "AES256", "AES512", "DES, DES3, AES128"),
        ("AuthenticationTransformConstants", "SHA256128", "SHA512", "MD596, SHA196, SHA256128"),
    ],
)
def test_unknown_values_name_the_element_and_the_accepted_values(
    element: str, good: str, bad: str, accepted: str
) -> None:
    xml = USER_TUNNEL.replace(f"<{element}>{good}</{element}>", f"<{element}>{bad}</{element}>")
    assert xml != USER_TUNNEL
    with pytest.raises(ProfileError) as excinfo:
        parse_profile_xml(xml)
    message = _one_line_error(excinfo)
    assert message.startswith(f"ProfileXML: unknown <{element}> value '{bad}'; accepted: {accepted}")


def test_unknown_value_in_a_hand_built_suite() -> None:
    with pytest.raises(ProfileError, match=r"^unknown <DHGroup> value 'Group20'; accepted: None, Group1"):
        _suite(dh="Group20").ike_proposal()


def test_missing_suite_element() -> None:
    xml = USER_TUNNEL.replace("<DHGroup>Group14</DHGroup>", "")
    with pytest.raises(ProfileError, match=r"^ProfileXML: <CryptographySuite> lacks <DHGroup>$"):
        parse_profile_xml(xml)


def test_bad_boolean() -> None:
    xml = DEVICE_TUNNEL_GCM.replace("<DeviceTunnel>true</DeviceTunnel>", "<DeviceTunnel>yes</DeviceTunnel>")
    with pytest.raises(ProfileError, match=r"<DeviceTunnel> is 'yes'; expected true or false"):
        parse_profile_xml(xml)


def test_hostile_value_is_clipped_to_one_line() -> None:
    xml = USER_TUNNEL.replace("<DHGroup>Group14</DHGroup>", "<DHGroup>x\ny" + "z" * 500 + "</DHGroup>")
    with pytest.raises(ProfileError) as excinfo:
        parse_profile_xml(xml)
    assert len(_one_line_error(excinfo)) < 300


def test_error_code_constant() -> None:
    assert ike_error_code_if_rejected == 13868
    assert CryptographySuite.ike_error_code_if_rejected == 13868


# -- servers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "servers"),
    [
        ("vpn.example.net", ("vpn.example.net",)),
        ("vpn.example.net;vpn.example.net", ("vpn.example.net",)),
        ("vpn.example.net;Contoso VPN", ("vpn.example.net",)),
        ("Contoso VPN;vpn.example.net", ("vpn.example.net",)),
        ("server2.example.net;server2FriendlyName", ("server2.example.net",)),
        ("a.example.net,b.example.net", ("a.example.net", "b.example.net")),
        ("a.example.net;b.example.net", ("a.example.net", "b.example.net")),
        (" a.example.net ; A.example.net , 203.0.113.7;Lab ", ("a.example.net", "203.0.113.7")),
        ("2001:db8::1", ("2001:db8::1",)),
        ("vpngw", ("vpngw",)),
        ("", ()),
    ],
)
def test_servers(value: str, servers: tuple[str, ...]) -> None:
    assert parse_servers(value) == servers
