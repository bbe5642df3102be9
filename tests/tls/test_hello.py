"""ClientHello building, server flight parsing, and interop with a real `openssl s_server` on loopback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.tls.openssl_server import CA_NAME, SERVER_NAME, OpensslServer, Pki, exchange, make_pki
from vpndoctor.tls import suites
from vpndoctor.tls.dn import name_to_rfc4514
from vpndoctor.tls.errors import TlsDecodeError
from vpndoctor.tls.hello import (
    HELLO_RETRY_REQUEST_RANDOM,
    ExtensionType,
    FlightStatus,
    HandshakeType,
    ServerFlight,
    Version,
    build_client_hello,
    encode_alert,
    parse_alert,
    parse_certificate,
    parse_certificate_request,
    parse_client_hello,
    parse_server_flight,
    parse_server_hello,
)
from vpndoctor.tls.records import ContentType, HandshakeMessage, RecordBuffer, encode_record

DATA = Path(__file__).parent / "data"
RANDOM = bytes(range(32))
X25519_PUB = x25519.X25519PrivateKey.from_private_bytes(bytes(range(1, 33))).public_key().public_bytes_raw()


def client_hello_of(wire: bytes) -> tuple[int, HandshakeMessage]:
    events = RecordBuffer().feed(wire)
    assert len(events) == 1 and isinstance(events[0], HandshakeMessage)
    assert events[0].msg_type == HandshakeType.CLIENT_HELLO
    return int.from_bytes(wire[1:3], "big"), events[0]


# ------------------------------------------------------------------------------------- building


@pytest.mark.parametrize("version", list(Version))
def test_client_hello_round_trip(version: Version) -> None:
    offered = [0x0001, 0x0002, 0x002F, 0xC02F, 0x00FF]
    wire = build_client_hello(
        version, offered, "vpn.example.com", RANDOM, session_id=b"S" * 32, x25519_public_key=X25519_PUB
    )
    record_version, msg = client_hello_of(wire)
    hello = parse_client_hello(msg.body)
    assert record_version == (0x0300 if version == Version.SSLv3 else 0x0301)
    assert hello.legacy_version == min(version, Version.TLS1_2)
    assert hello.random == RANDOM and hello.session_id == b"S" * 32
    assert hello.cipher_suites == tuple(offered) and hello.compression_methods == b"\x00"
    types = [e.ext_type for e in hello.extensions]
    if version == Version.SSLv3:
        assert types == []
        return
    sni = hello.extension(ExtensionType.SERVER_NAME)
    assert sni is not None and sni.data == b"\x00\x12\x00\x00\x0fvpn.example.com"
    assert ExtensionType.SUPPORTED_GROUPS in types and ExtensionType.EC_POINT_FORMATS in types
    assert ExtensionType.RENEGOTIATION_INFO in types and ExtensionType.SESSION_TICKET in types
    assert (ExtensionType.SIGNATURE_ALGORITHMS in types) == (version >= Version.TLS1_2)
    if version == Version.TLS1_3:
        sv = hello.extension(ExtensionType.SUPPORTED_VERSIONS)
        ks = hello.extension(ExtensionType.KEY_SHARE)
        assert sv is not None and sv.data == b"\x02\x03\x04"
        assert ks is not None and ks.data == b"\x00\x24\x00\x1d\x00\x20" + X25519_PUB
        assert ExtensionType.PSK_KEY_EXCHANGE_MODES in types
    else:
        assert ExtensionType.KEY_SHARE not in types and ExtensionType.SUPPORTED_VERSIONS not in types


def test_caller_extensions_replace_in_place_or_append() -> None:
    wire = build_client_hello(
        Version.TLS1_2,
        [0x002F],
        None,
        RANDOM,
        extensions=[(ExtensionType.SUPPORTED_GROUPS, b"\x00\x02\x00\x17"), (0x1234, b"z")],
    )
    hello = parse_client_hello(client_hello_of(wire)[1].body)
    types = [e.ext_type for e in hello.extensions]
    assert types[0] == ExtensionType.SUPPORTED_GROUPS and types[-1] == 0x1234
    assert ExtensionType.SERVER_NAME not in types
    groups = hello.extension(ExtensionType.SUPPORTED_GROUPS)
    assert groups is not None and groups.data == b"\x00\x02\x00\x17"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"random": b"short"},
        {"session_id": b"x" * 33},
        {"suites": []},
        {"suites": [0x10000]},
        {"version": Version.TLS1_3},  # no key share
        {"version": Version.SSLv3, "extensions": [(0, b"")]},
        {"extensions": [(1, b""), (1, b"")]},
    ],
)
def test_misuse_is_a_value_error(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {
        "version": Version.TLS1_2,
        "suites": [0x002F],
        "server_name": None,
        "random": RANDOM,
    }
    args.update(kwargs)
    with pytest.raises(ValueError):
        build_client_hello(**args)  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(list(Version)),
    st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=2000),
    st.binary(min_size=32, max_size=32),
    st.binary(max_size=32),
)
def test_any_suite_list_round_trips(version: Version, offered: list[int], random: bytes, sid: bytes) -> None:
    wire = build_client_hello(version, offered, "h", random, session_id=sid, x25519_public_key=X25519_PUB)
    hello = parse_client_hello(client_hello_of(wire)[1].body)
    assert hello.cipher_suites == tuple(offered) and hello.random == random and hello.session_id == sid


def test_huge_suite_list_spans_records_and_reassembles() -> None:
    offered = list(range(32767))
    wire = build_client_hello(Version.TLS1_2, offered, "h", RANDOM)
    assert wire[5 + 2**14] == ContentType.HANDSHAKE  # a second record follows a full first one
    events = RecordBuffer().feed(wire)
    assert len(events) == 1 and isinstance(events[0], HandshakeMessage)
    assert parse_client_hello(events[0].body).cipher_suites == tuple(offered)


# ------------------------------------------------------------------------------------- parsing


def test_sslv2_answer_is_recognised() -> None:
    cert = b"\x30\x03\x02\x01\x00"
    body = bytes([4, 0, 1]) + b"\x00\x02" + b"\x00\x05" + b"\x00\x03" + b"\x00\x10" + cert + b"\x01\x00\x80"
    wire = bytes([0x80, len(body) + 16]) + body + b"C" * 16
    f = parse_server_flight(wire)
    assert f.status == FlightStatus.SSLV2 and f.sslv2_server_hello is not None
    assert f.sslv2_server_hello.cipher_specs == (0x010080,)
    assert parse_server_flight(wire[:10]).status == FlightStatus.INCOMPLETE


def server_hello_body(version: int, suite: int, random: bytes = RANDOM, exts: bytes | None = None) -> bytes:
    body = version.to_bytes(2, "big") + random + b"\x04abcd" + suite.to_bytes(2, "big") + b"\x00"
    if exts is not None:
        body += len(exts).to_bytes(2, "big") + exts
    return body


def flight(*messages: tuple[int, bytes]) -> bytes:
    stream = b"".join(bytes([t]) + len(b).to_bytes(3, "big") + b for t, b in messages)
    return encode_record(ContentType.HANDSHAKE, 0x0303, stream)


def test_server_hello_fields() -> None:
    hello = parse_server_hello(server_hello_body(0x0303, 0xC02F, exts=b"\xff\x01\x00\x01\x00"))
    assert hello.version == hello.legacy_version == 0x0303 and hello.cipher_suite == 0xC02F
    assert hello.session_id == b"abcd" and hello.compression_method == 0
    assert hello.extension(ExtensionType.RENEGOTIATION_INFO) is not None
    assert not hello.is_hello_retry_request and hello.downgrade_sentinel is None
    assert parse_server_hello(server_hello_body(0x0301, 0x002F)).extensions == ()


def test_tls13_version_hrr_and_downgrade_sentinel() -> None:
    sv13 = b"\x00\x2b\x00\x02\x03\x04"
    hello = parse_server_hello(server_hello_body(0x0303, 0x1301, exts=sv13))
    assert hello.version == Version.TLS1_3
    hrr = parse_server_flight(
        flight((2, server_hello_body(0x0303, 0x1301, HELLO_RETRY_REQUEST_RANDOM, sv13)))
    )
    assert hrr.status == FlightStatus.HELLO_RETRY
    assert hrr.server_hello is not None and hrr.server_hello.is_hello_retry_request
    down = parse_server_hello(server_hello_body(0x0303, 0x002F, random=bytes(24) + b"DOWNGRD\x01"))
    assert down.downgrade_sentinel == Version.TLS1_2


def test_duplicate_extension_and_trailing_bytes_are_errors() -> None:
    with pytest.raises(TlsDecodeError):
        parse_server_hello(server_hello_body(0x0303, 0x002F, exts=b"\x00\x17\x00\x00" * 2))
    with pytest.raises(TlsDecodeError):
        parse_server_hello(server_hello_body(0x0303, 0x002F, exts=b"") + b"!")


def test_certificate_request_tls10_and_tls12() -> None:
    dn = CA_NAME.public_bytes()
    cas = (len(dn) + 2).to_bytes(2, "big") + len(dn).to_bytes(2, "big") + dn
    req12 = parse_certificate_request(b"\x01\x01" + b"\x00\x04\x04\x01\x08\x04" + cas, Version.TLS1_2)
    assert req12.certificate_types == (1,) and req12.signature_algorithms == (0x0401, 0x0804)
    assert req12.certificate_authorities == ("O=vpndoctor,CN=Test CA",)
    req10 = parse_certificate_request(b"\x01\x01" + b"\x00\x00", Version.TLS1_0)
    assert req10.certificate_authorities == () and req10.signature_algorithms == ()
    with pytest.raises(TlsDecodeError):
        parse_certificate_request(b"\x01\x01" + b"\x00\x00", Version.TLS1_2)  # empty sig algs


def test_certificate_and_alert() -> None:
    assert parse_certificate(b"\x00\x00\x06\x00\x00\x03abc") == (b"abc",)
    with pytest.raises(TlsDecodeError):
        parse_certificate(b"\x00\x00\x03\x00\x00\x00")  # empty certificate
    alert = parse_alert(b"\x02\x46")
    assert alert.is_fatal and alert.description_name == "protocol_version"
    assert parse_alert(b"\x01\x00").description_name == "close_notify"
    with pytest.raises(TlsDecodeError):
        parse_alert(b"\x03\x28")
    flight_ = parse_server_flight(encode_alert(2, 40))
    assert flight_.status == FlightStatus.ALERT and flight_.alert is not None
    assert flight_.alert.description_name == "handshake_failure"


def test_out_of_order_flight_is_an_error() -> None:
    with pytest.raises(TlsDecodeError):
        parse_server_flight(flight((11, b"\x00\x00\x00")))  # Certificate before ServerHello
    body = server_hello_body(0x0303, 0x002F)
    with pytest.raises(TlsDecodeError):
        parse_server_flight(flight((2, body), (2, body)))
    with pytest.raises(TlsDecodeError):
        parse_server_flight(flight((2, body), (14, b"x")))  # ServerHelloDone has no body


# ------------------------------------------------------------------------------------- captures


def test_captured_tls12_flight_with_certificate_request() -> None:
    data = (DATA / "openssl30_tls12_certreq.bin").read_bytes()
    f = parse_server_flight(data)
    assert f.status == FlightStatus.COMPLETE and f.server_hello is not None
    assert f.server_hello.cipher_suite == 0xC02F and f.server_hello.version == Version.TLS1_2
    assert f.handshake_types == (2, 11, 12, 13, 14) and f.server_key_exchange
    assert len(f.certificates) == 2
    subject = x509.load_der_x509_certificate(f.certificates[0]).subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "sstp.test"
    assert f.certificate_request is not None
    assert f.certificate_request.certificate_authorities == ("O=vpndoctor,CN=Test CA",)


def test_captured_tls13_and_sslv3_alert() -> None:
    f13 = parse_server_flight((DATA / "openssl30_tls13.bin").read_bytes())
    assert f13.status == FlightStatus.ENCRYPTED and f13.server_hello is not None
    assert f13.server_hello.version == Version.TLS1_3 and f13.server_hello.cipher_suite == 0x1301
    f3 = parse_server_flight((DATA / "openssl30_sslv3_alert.bin").read_bytes())
    assert f3.status == FlightStatus.ALERT and f3.alert is not None and f3.alert.is_fatal


@pytest.mark.parametrize(
    "name", ["openssl30_tls12_certreq.bin", "openssl30_tls13.bin", "openssl30_sslv3_alert.bin"]
)
def test_every_truncation_is_incomplete_or_our_error(name: str) -> None:
    data = (DATA / name).read_bytes()
    full = parse_server_flight(data).status
    for cut in range(len(data)):
        try:
            status = parse_server_flight(data[:cut]).status
        except TlsDecodeError:
            continue
        assert status in (FlightStatus.INCOMPLETE, full), cut


@pytest.mark.parametrize("name", ["openssl30_tls12_certreq.bin", "openssl30_tls13.bin"])
def test_every_byte_flip_is_survivable(name: str) -> None:
    data = (DATA / name).read_bytes()
    limit = min(len(data), 1200)  # covers ServerHello, certificates and what follows
    for i in range(limit):
        for mask in (0x01, 0x80, 0xFF):
            mutated = data[:i] + bytes([data[i] ^ mask]) + data[i + 1 :]
            with contextlib.suppress(TlsDecodeError):
                parse_server_flight(mutated)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_raise_only_our_error(data: bytes) -> None:
    for candidate in (data, b"\x16\x03\x03" + data[:2] + data[2:], flight((2, data))):
        try:
            result = parse_server_flight(candidate)
        except TlsDecodeError:
            continue
        assert isinstance(result, ServerFlight)


# ------------------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name",
    [
        CA_NAME,
        SERVER_NAME,
        x509.Name(
            [
                x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "com"),
                x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "example"),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, 'RAS, "VPN"+ <x>;'),
                x509.NameAttribute(NameOID.LOCALITY_NAME, "Zürich"),
                x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "#ZH "),
            ]
        ),
        x509.Name(
            [
                x509.RelativeDistinguishedName(
                    [
                        x509.NameAttribute(NameOID.COMMON_NAME, "a"),
                        x509.NameAttribute(NameOID.SERIAL_NUMBER, "7"),
                    ]
                )
            ]
        ),
    ],
)
def test_dn_rendering_matches_cryptography(name: x509.Name) -> None:
    assert name_to_rfc4514(name.public_bytes()) == name.rfc4514_string()


def test_dn_email_gets_a_short_name_and_truncations_fail_cleanly() -> None:
    name = x509.Name([x509.NameAttribute(NameOID.EMAIL_ADDRESS, "ops@example.com")])
    der = name.public_bytes()
    assert name_to_rfc4514(der) == "emailAddress=ops@example.com"
    for cut in range(len(der)):
        with pytest.raises(TlsDecodeError):
            name_to_rfc4514(der[:cut])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_dn_random_bytes(data: bytes) -> None:
    with contextlib.suppress(TlsDecodeError):
        name_to_rfc4514(b"\x30" + bytes([len(data)]) + data if len(data) < 128 else data)


# ------------------------------------------------------------------------------------- live openssl

OUR_SUITES = [0xC02F, 0xC030, 0xC013, 0x009C, 0x002F, 0x0035, 0x00FF]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("tls-pki"))


def start(pki: Pki, cipher: str, *extra: str) -> Iterator[OpensslServer]:
    try:
        server = OpensslServer(pki, cipher, list(extra))
    except RuntimeError as exc:
        pytest.fail(f"daemon helper: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def plain_server(pki: Pki) -> Iterator[OpensslServer]:
    yield from start(pki, "ALL:@SECLEVEL=0")


@pytest.fixture(scope="module")
def verify_server(pki: Pki) -> Iterator[OpensslServer]:
    yield from start(pki, "ALL:@SECLEVEL=0", "-Verify", "1", "-CAfile", str(pki.ca_pem))


@pytest.fixture(scope="module")
def null_server(pki: Pki) -> Iterator[OpensslServer]:
    yield from start(pki, "NULL:@SECLEVEL=0")


def probe(server: OpensslServer, version: Version, offered: list[int]) -> ServerFlight:
    hello = build_client_hello(version, offered, "sstp.test", RANDOM, x25519_public_key=X25519_PUB)

    def done(data: bytes) -> bool:
        try:
            return parse_server_flight(data).status != FlightStatus.INCOMPLETE
        except TlsDecodeError:
            return True

    return parse_server_flight(exchange(server.port, hello, done))


def test_live_tls12_without_client_auth(plain_server: OpensslServer) -> None:
    f = probe(plain_server, Version.TLS1_2, OUR_SUITES)
    assert f.status == FlightStatus.COMPLETE and f.server_hello is not None
    assert f.server_hello.version == Version.TLS1_2 and f.server_hello.cipher_suite in OUR_SUITES
    assert x509.load_der_x509_certificate(f.certificates[0]).subject == SERVER_NAME
    assert f.certificate_request is None


def test_live_tls12_with_client_auth(verify_server: OpensslServer) -> None:
    f = probe(verify_server, Version.TLS1_2, OUR_SUITES)
    assert f.status == FlightStatus.COMPLETE and f.server_hello is not None
    assert f.server_hello.cipher_suite in OUR_SUITES
    assert x509.load_der_x509_certificate(f.certificates[0]).subject == SERVER_NAME
    assert f.certificate_request is not None
    assert f.certificate_request.certificate_authorities == (CA_NAME.rfc4514_string(),)
    assert f.certificate_request.signature_algorithms


def test_live_null_only_hello_gets_a_null_suite(null_server: OpensslServer) -> None:
    # OpenSSL 3.0 still negotiates NULL suites at security level 0 (checked on Debian 12's 3.0.x).
    f = probe(null_server, Version.TLS1_2, sorted(suites.NULL))
    if f.status == FlightStatus.ALERT:
        assert f.alert is not None and f.alert.description_name == "handshake_failure"
        pytest.xfail("this OpenSSL build refuses NULL suites even at SECLEVEL=0")
    assert f.status == FlightStatus.COMPLETE and f.server_hello is not None
    assert suites.is_null(f.server_hello.cipher_suite)


def test_live_null_server_refuses_real_ciphers(null_server: OpensslServer) -> None:
    f = probe(null_server, Version.TLS1_2, OUR_SUITES)
    assert f.status == FlightStatus.ALERT and f.alert is not None
    assert f.alert.description_name == "handshake_failure"


def test_live_sslv3_only_hello_is_refused(plain_server: OpensslServer) -> None:
    # Debian's OpenSSL has no SSLv3; it answers handshake_failure (seen) or protocol_version, or closes.
    f = probe(plain_server, Version.SSLv3, [0x002F, 0x000A])
    assert f.status in (FlightStatus.ALERT, FlightStatus.INCOMPLETE)
    if f.status == FlightStatus.ALERT:
        assert f.alert is not None and f.alert.is_fatal
        assert f.alert.description_name in ("protocol_version", "handshake_failure")


def test_live_tls13_hello(plain_server: OpensslServer) -> None:
    f = probe(plain_server, Version.TLS1_3, [0x1301, 0x1302])
    assert f.status == FlightStatus.ENCRYPTED and f.server_hello is not None
    assert f.server_hello.version == Version.TLS1_3 and f.server_hello.cipher_suite in (0x1301, 0x1302)
    ks = f.server_hello.extension(ExtensionType.KEY_SHARE)
    assert ks is not None and ks.data[:4] == b"\x00\x1d\x00\x20"
