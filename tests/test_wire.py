"""vpndoctor.wire, what every codec shares: the bounded `Reader` (bounds, `restrict_to` nesting, `vector`,
absolute offsets) and `DecodeError` (message text, pickling), and each codec's binding of both (ike and
sstp `MalformedMessage`, tls `TlsDecodeError`): the codec's own error class and wording, `except` clauses
intact."""

from __future__ import annotations

import pickle
from collections.abc import Callable

import pytest

from vpndoctor.errors import VpndoctorError
from vpndoctor.ike import auth, dh, fragments, keys, sk
from vpndoctor.ike import errors as ike_errors
from vpndoctor.ike.payloads import Reader as IkeReader
from vpndoctor.sstp import errors as sstp_errors
from vpndoctor.tls import _reader as tls_reader
from vpndoctor.tls.errors import TlsDecodeError
from vpndoctor.wire import DecodeError, Reader, bytes_left

# --- DecodeError ------------------------------------------------------------------------------------------


def test_bytes_left_singular_and_plural() -> None:
    assert bytes_left(0) == "0 bytes left"
    assert bytes_left(1) == "1 byte left"
    assert bytes_left(12) == "12 bytes left"


def test_decode_error_text_and_fields() -> None:
    err = DecodeError(7, "a 4-byte header", "found 3 bytes")
    assert str(err) == "offset 7: expected a 4-byte header, found 3 bytes"
    assert (err.offset, err.expected, err.found) == (7, "a 4-byte header", "found 3 bytes")
    bare = DecodeError(0, "an SSLv2 2-byte record header")
    assert str(bare) == "offset 0: expected an SSLv2 2-byte record header"
    assert bare.found is None
    assert isinstance(err, VpndoctorError)


# Every decode error class of the codecs, built the way the codec builds it.
ERRORS = [
    DecodeError(5, "x", "found y"),
    DecodeError(5, "x"),
    ike_errors.MalformedMessage(28, "4-byte SPI", "1 byte left"),
    ike_errors.UnsupportedCriticalPayload(28, 99),
    ike_errors.NotIKEv2(17, 1, 0),
    auth.AuthPayloadError(3, "DER tag and length (RFC 7427 §3)", "found 1 bytes"),
    sk.IntegrityCheckFailed(40, "an ICV that matches"),
    sk.DecryptionFailed(40, "valid padding", "found pad length 200"),
    fragments.ReassemblyError(0, "consistent totals"),
    dh.InvalidKePayload(36, "a 256-byte KE value", "found 255"),
    dh.UnsupportedGroup(32, "a supported DH group", "found 99"),
    keys.UnsupportedSuite(0, "a supported PRF"),
    keys.SecretsFileError(12, "a hex SPI"),
    TlsDecodeError(9, "2 bytes of cipher suite", "1 left"),
    TlsDecodeError(0, "a ServerHello, then encrypted records"),
    sstp_errors.MalformedMessage(4, "message type 1-9", "found 0x0000"),
    sstp_errors.MalformedHttp(0, "an HTTP status line"),
]


@pytest.mark.parametrize("err", ERRORS, ids=lambda e: f"{type(e).__module__}.{type(e).__name__}")
def test_pickling_keeps_type_fields_and_text(err: DecodeError) -> None:
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is type(err)
    assert str(again) == str(err)
    assert (again.offset, again.expected, again.found) == (err.offset, err.expected, err.found)
    assert vars(again) == vars(err)  # the subclasses' own fields (payload_type, versions) too


def test_subclasses_keep_their_text() -> None:
    assert str(ike_errors.UnsupportedCriticalPayload(28, 99)) == (
        "offset 28: expected a payload type this implementation supports, found critical payload type 99"
    )
    assert (
        str(ike_errors.NotIKEv2(17, 1, 0))
        == "offset 17: expected IKE major version 2, found 1.0 (IKEv1/ISAKMP)"
    )
    assert str(sstp_errors.MalformedHttp(3, "CRLF")) == "offset 3: expected CRLF"


def test_hierarchy_keeps_each_codecs_except_clauses() -> None:
    ike = ike_errors.MalformedMessage(0, "x")
    assert isinstance(ike, ike_errors.IkeError) and isinstance(ike, DecodeError)
    assert isinstance(ike_errors.NotIKEv2(17, 1, 0), ike_errors.MalformedMessage)
    assert isinstance(sstp_errors.MalformedHttp(0, "x"), sstp_errors.MalformedMessage)
    assert issubclass(TlsDecodeError, DecodeError)
    # the codecs' errors stay distinct: an `except` of one codec does not catch another's
    assert not issubclass(TlsDecodeError, ike_errors.MalformedMessage)
    assert not issubclass(sstp_errors.MalformedMessage, ike_errors.MalformedMessage)
    assert not issubclass(ike_errors.MalformedMessage, sstp_errors.MalformedMessage)
    with pytest.raises(ike_errors.MalformedMessage):
        IkeReader(b"").u8("x")
    with pytest.raises(TlsDecodeError):
        tls_reader.Reader(b"").u8("x")


# --- Reader: bounds and offsets ---------------------------------------------------------------------------


def test_reads_are_big_endian_and_advance() -> None:
    r = Reader(bytes(range(1, 14)), base_offset=100)
    assert r.offset == 100 and r.remaining == 13
    assert r.u8("a") == 1
    assert r.u16("b") == 0x0203
    assert r.u24("c") == 0x040506
    assert r.u32("d") == 0x0708090A
    assert r.uint(1, "e") == 0x0B
    assert r.take(1, "f") == b"\x0c"
    assert r.offset == 112 and r.remaining == 1
    assert r.rest() == b"\x0d"
    assert r.rest() == b""
    r.expect_end("all")


@pytest.mark.parametrize(
    ("read", "wanted"),
    [
        (lambda r: r.u8("field"), 1),
        (lambda r: r.u16("field"), 2),
        (lambda r: r.u24("field"), 3),
        (lambda r: r.u32("field"), 4),
        (lambda r: r.uint(5, "field"), 5),
        (lambda r: r.take(6, "field"), 6),
    ],
)
def test_a_short_read_fails_at_its_offset_and_moves_nothing(
    read: Callable[[Reader], object], wanted: int
) -> None:
    data = bytes(wanted - 1)
    r = Reader(b"\xff" + data, base_offset=10)
    r.u8("lead")
    with pytest.raises(DecodeError) as err:
        read(r)
    assert (err.value.offset, err.value.expected, err.value.found) == (11, "field", bytes_left(wanted - 1))
    assert str(err.value) == f"offset 11: expected field, {bytes_left(wanted - 1)}"
    assert r.offset == 11 and r.remaining == wanted - 1  # nothing consumed


def test_input_is_held_as_bytes() -> None:
    for data in (bytearray(b"\x01\x02"), memoryview(b"\x01\x02")):
        r = Reader(data)  # type: ignore[arg-type]
        assert type(r.take(2, "x")) is bytes


def test_base_offset_is_positional_or_keyword() -> None:
    assert Reader(b"a", 5).offset == Reader(b"a", base_offset=5).offset == 5


def test_expect_end_names_the_leftovers() -> None:
    r = Reader(b"\x01\x02\x03", base_offset=4)
    r.u8("x")
    with pytest.raises(DecodeError) as err:
        r.expect_end("thing")
    assert str(err.value) == "offset 5: expected end of thing, 2 bytes left"


def test_require_checks_without_reading_and_can_name_an_earlier_offset() -> None:
    r = Reader(b"\x00\x01\x02\x03\x04", base_offset=20)
    r.require(5, "5 bytes")
    assert r.offset == 20
    r.u16("x")
    with pytest.raises(DecodeError) as err:
        r.require(4, "4-byte body")
    assert str(err.value) == "offset 22: expected 4-byte body, 3 bytes left"
    with pytest.raises(DecodeError) as err:
        r.require(4, "6-byte structure", at=20)  # counted from where the structure started
    assert str(err.value) == "offset 20: expected 6-byte structure, 5 bytes left"


# --- Reader: restrict_to ----------------------------------------------------------------------------------


def test_restrict_to_bounds_reads_and_restores_the_end() -> None:
    r = Reader(b"\x01\x02\x03\x04\x05", base_offset=10)
    with r.restrict_to(2, "pair"):
        assert r.remaining == 2
        with pytest.raises(DecodeError) as err:
            r.u32("word")
        assert str(err.value) == "offset 10: expected word, 2 bytes left"
        assert r.u16("x") == 0x0102
    assert r.remaining == 3
    assert r.rest() == b"\x03\x04\x05"


def test_restrict_to_nests() -> None:
    r = Reader(bytes(range(10)), base_offset=100)
    with r.restrict_to(8, "outer"):
        r.u8("a")
        with r.restrict_to(3, "inner"):
            assert r.remaining == 3
            with r.restrict_to(1, "innermost"):
                assert r.rest() == b"\x01"
            assert r.rest() == b"\x02\x03"
        assert r.remaining == 4
        assert r.offset == 104
        r.take(4, "tail")
    assert r.remaining == 2


def test_restrict_to_leftovers_fail_with_the_offset_of_the_first_extra_byte() -> None:
    r = Reader(b"\x01\x02\x03\x04", base_offset=10)
    with r.restrict_to(4, "outer"):
        with pytest.raises(DecodeError) as err, r.restrict_to(3, "inner"):
            r.u8("x")
        assert str(err.value) == "offset 11: expected end of inner, 2 bytes left"
        assert r.remaining == 3  # the inner end was restored, the outer one holds
        r.take(3, "rest")


def test_restrict_to_past_the_end_fails_before_entering() -> None:
    r = Reader(b"\x01\x02\x03", base_offset=7)
    r.u8("x")
    with pytest.raises(DecodeError) as err:
        r.restrict_to(5, "transform")
    assert str(err.value) == "offset 8: expected 5-byte transform, 2 bytes left"
    assert r.remaining == 2
    with r.restrict_to(2, "outer"):
        with pytest.raises(DecodeError) as err:
            r.restrict_to(3, "inner")  # bounded by the outer restriction, not the data
        assert str(err.value) == "offset 8: expected 3-byte inner, 2 bytes left"
        r.take(2, "rest")


def test_an_error_inside_restrict_to_is_not_masked_and_the_end_is_restored() -> None:
    r = Reader(b"\x01\x02\x03\x04")
    with pytest.raises(DecodeError) as err, r.restrict_to(2, "pair"):
        r.u8("x")
        raise DecodeError(r.offset, "something else")
    assert err.value.expected == "something else"  # not "end of pair"
    assert r.remaining == 3


# --- Reader: vector ---------------------------------------------------------------------------------------


def test_vector_hands_back_a_bounded_sub_reader_with_absolute_offsets() -> None:
    data = b"\x00\x05" + b"\x02ab\x01c" + b"\xee"
    r = Reader(data, base_offset=50)
    vec = r.vector(2, "list")
    assert type(vec) is Reader
    assert (vec.offset, vec.remaining) == (52, 5)
    assert r.offset == 57 and r.u8("after") == 0xEE  # the parent moved past the vector
    inner = vec.vector(1, "item")
    assert (inner.offset, inner.rest()) == (53, b"ab")
    assert vec.vector(1, "item").rest() == b"c"
    vec.expect_end("list")
    with pytest.raises(DecodeError) as err:
        inner.u8("x")  # a sub-reader ends where its vector ends
    assert str(err.value) == "offset 55: expected x, 0 bytes left"


def test_vector_short_length_or_body() -> None:
    with pytest.raises(DecodeError) as err:
        Reader(b"\x00", base_offset=3).vector(2, "list")
    assert str(err.value) == "offset 3: expected length of list, 1 byte left"
    r = Reader(b"\x04ab", base_offset=3)
    with pytest.raises(DecodeError) as err:
        r.vector(1, "list")
    assert str(err.value) == "offset 4: expected list, 2 bytes left"


# --- each codec's binding -----------------------------------------------------------------------------------


def test_ike_reader_raises_malformed_message_in_the_ike_wording() -> None:
    r = IkeReader(b"\x01\x02\x03", base_offset=28)
    with pytest.raises(ike_errors.MalformedMessage) as err:
        r.u32("SPI")
    assert type(err.value) is ike_errors.MalformedMessage
    assert str(err.value) == "offset 28: expected SPI, 3 bytes left"
    r.u8("x")
    with pytest.raises(ike_errors.MalformedMessage) as err:
        r.expect_end("payload")
    assert str(err.value) == "offset 29: expected end of payload, 2 bytes left"
    assert type(IkeReader(b"\x01a").vector(1, "v")) is IkeReader


def test_tls_reader_raises_tls_decode_error_in_the_tls_wording() -> None:
    r = tls_reader.Reader(b"\x01\x02\x03", 9)
    with pytest.raises(TlsDecodeError) as err:
        r.u32("SPI")
    assert type(err.value) is TlsDecodeError
    assert str(err.value) == "offset 9: expected 4 bytes of SPI, 3 left"
    r.u8("x")
    with pytest.raises(TlsDecodeError) as err:
        r.expect_end("ServerHello")
    assert str(err.value) == "offset 10: expected end of ServerHello, 2 extra bytes"
    with pytest.raises(TlsDecodeError) as err:
        tls_reader.Reader(b"\x00\x05ab", 0).vector(2, "cipher_suites")
    assert str(err.value) == "offset 2: expected 5 bytes of cipher_suites, 2 left"
    with pytest.raises(TlsDecodeError) as err:
        tls_reader.Reader(b"\x00", 0).vector(3, "certificate_list")
    assert str(err.value) == "offset 0: expected 3 bytes of length of certificate_list, 1 left"
    vec = tls_reader.Reader(b"\x01a", 0).vector(1, "v")
    assert type(vec) is tls_reader.Reader
    with pytest.raises(TlsDecodeError):
        vec.u16("x")
