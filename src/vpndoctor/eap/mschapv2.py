"""EAP-MSCHAPv2, peer side: the RFC 2759 computations, the RFC 3079 keys and the EAP method as Windows and
strongSwan speak it (draft-kamath-pppext-eap-mschapv2).

The conversation: the server's Challenge (OpCode 1) is answered with a Response (2) carrying our peer
challenge and NT-Response; the server's Success request (3) "S=<authenticator response> M=<message>" proves it
knows the password too, and is answered with a one-octet Success (3); a Failure request (4)
"E=<error> R=<retry> C=<challenge> V=<version> M=<message>" is answered with a one-octet Failure (4). We never
retry with a new password and never change the password (OpCode 7): an expired password (E=648) ends the
conversation with an explanation. The MSK, for the IKEv2 AUTH payload, is derived as strongSwan's eap-mschapv2
plugin and Microsoft's [MS-CHAP] specification do: MasterReceiveKey | MasterSendKey | 32 zero octets (the
authenticator's names; for the peer that is its send key, then its receive key).

Crypto: SHA-1 from `cryptography`; MD4 (NtPasswordHash) and single DES (ChallengeResponse) from pycryptodome,
because `cryptography` offers neither (no MD4 at all; only TripleDES, deprecated). Both are used only as
MS-CHAPv2 requires, never as general-purpose primitives.

Secrets: a password arrives as `str`, is converted to UTF-16LE (RFC 2759 §8.3) and only its NT hash is kept;
no repr, exception text or event ever contains the password, the NT hash, the authenticator response we
expect or the MSK.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, IntEnum

from Crypto.Cipher import DES
from Crypto.Hash import MD4
from cryptography.hazmat.primitives import hashes

from vpndoctor.eap.errors import EapDecodeError, EapProtocolError
from vpndoctor.eap.method import EapEvent, MethodStep
from vpndoctor.eap.packets import TYPE_DATA_OFFSET, Reader
from vpndoctor.ike.constants import EapType

__all__ = [
    "CHALLENGE_BYTES",
    "MSK_BYTES",
    "ChallengeRequest",
    "FailureRequest",
    "MsChapErrorCode",
    "MsChapV2Challenge",
    "MsChapV2Failure",
    "MsChapV2Method",
    "MsChapV2ServerAuthenticated",
    "MsChapV2ServerRejected",
    "MsChapV2State",
    "OpCode",
    "Response",
    "SuccessRequest",
    "TerseResponse",
    "challenge_hash",
    "challenge_response",
    "check_authenticator_response",
    "decode_request",
    "decode_response",
    "error_name",
    "generate_authenticator_response",
    "generate_nt_response",
    "get_asymmetric_start_key",
    "get_master_key",
    "hash_nt_password_hash",
    "msk",
    "nt_password_hash",
    "password_utf16le",
    "user_part",
]

CHALLENGE_BYTES = 16
NT_RESPONSE_BYTES = 24
RESPONSE_VALUE_BYTES = 49  # Peer-Challenge 16, Reserved 8, NT-Response 24, Flags 1
MSK_BYTES = 64
MAX_PASSWORD_UNITS = 256  # RFC 2759 §8: 0-to-256-unicode-char Password
MAX_NAME_BYTES = 256  # RFC 2759 §8: 0-to-256-char UserName


class OpCode(IntEnum):
    CHALLENGE = 1
    RESPONSE = 2
    SUCCESS = 3
    FAILURE = 4
    CHANGE_PASSWORD = 7


class MsChapErrorCode(IntEnum):
    """The E= codes of a Failure request (RFC 2759 §6); `_ERROR_TEXT` says what each means."""

    ERROR_RESTRICTED_LOGON_HOURS = 646
    ERROR_ACCT_DISABLED = 647
    ERROR_PASSWD_EXPIRED = 648
    ERROR_NO_DIALIN_PERMISSION = 649
    ERROR_AUTHENTICATION_FAILURE = 691
    ERROR_CHANGING_PASSWORD = 709


_ERROR_TEXT = {
    646: "the account may not log on at this time of day",
    647: "the account is disabled",
    648: "the password has expired",
    649: "the account has no dial-in permission",
    691: "user name or password rejected",
    709: "error changing the password",
}


def error_name(code: int) -> str:
    """"ERROR_AUTHENTICATION_FAILURE" for 691; "ERROR_<code>" for codes RFC 2759 does not list."""
    try:
        return MsChapErrorCode(code).name
    except ValueError:
        return f"ERROR_{code}"


# ---- RFC 2759 §8 and RFC 3079 §3 ---------------------------------------------------------------------------


def _sha1(*parts: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA1())
    for part in parts:
        digest.update(part)
    return digest.finalize()


def password_utf16le(password: str) -> bytes:
    """The password as RFC 2759 hashes it: UTF-16LE, at most 256 code units. Lone surrogates are kept as the
    code units they are (what a Windows WCHAR string holds) rather than failing."""
    if not isinstance(password, str):
        raise TypeError(f"the password must be a str, not {type(password).__name__}")
    encoded = password.encode("utf-16-le", "surrogatepass")
    if len(encoded) > 2 * MAX_PASSWORD_UNITS:
        raise ValueError(
            f"an MS-CHAPv2 password has at most {MAX_PASSWORD_UNITS} UTF-16 code units (RFC 2759)"
        )
    return encoded


def nt_password_hash(password: str) -> bytes:
    """NtPasswordHash: MD4 of the UTF-16LE password (16 bytes)."""
    return MD4.new(password_utf16le(password)).digest()


def hash_nt_password_hash(password_hash: bytes) -> bytes:
    """HashNtPasswordHash: MD4 of the NT hash."""
    return MD4.new(password_hash).digest()


def user_part(name: bytes) -> bytes:
    """The user name without a prepended "DOMAIN\\", as ChallengeHash wants it (RFC 2759 §8.2; strongSwan and
    hostapd cut at the first backslash)."""
    _, sep, user = name.partition(b"\\")
    return user if sep else name


def challenge_hash(peer_challenge: bytes, authenticator_challenge: bytes, username: bytes) -> bytes:
    """ChallengeHash: the first 8 bytes of SHA-1(PeerChallenge | AuthenticatorChallenge | UserName), the user
    name without its domain."""
    _check_len("peer challenge", peer_challenge, CHALLENGE_BYTES)
    _check_len("authenticator challenge", authenticator_challenge, CHALLENGE_BYTES)
    return _sha1(peer_challenge, authenticator_challenge, user_part(username))[:8]


def _des_key(seven: bytes) -> bytes:
    """Spread 56 key bits over 8 octets, 7 per octet, and set odd parity in the low bit (RFC 2759 §8.6)."""
    bits = int.from_bytes(seven, "big")
    key = bytearray()
    for i in range(8):
        byte = ((bits >> (49 - 7 * i)) & 0x7F) << 1
        key.append(byte | (bin(byte).count("1") + 1) % 2)
    return bytes(key)


def challenge_response(challenge: bytes, password_hash: bytes) -> bytes:
    """ChallengeResponse: the 8-byte challenge DES-encrypted under the three 7-byte thirds of the NT hash
    padded with zeros to 21 bytes (24 bytes)."""
    _check_len("challenge", challenge, 8)
    _check_len("password hash", password_hash, 16)
    padded = password_hash + bytes(5)
    return b"".join(
        DES.new(_des_key(padded[i : i + 7]), DES.MODE_ECB).encrypt(challenge) for i in (0, 7, 14)
    )


def generate_nt_response(
    authenticator_challenge: bytes, peer_challenge: bytes, username: bytes, password_hash: bytes
) -> bytes:
    """GenerateNTResponse, from the NT hash rather than the password (so the password need not be kept)."""
    challenge = challenge_hash(peer_challenge, authenticator_challenge, username)
    return challenge_response(challenge, password_hash)


_SIGNING_MAGIC = b"Magic server to client signing constant"
_PAD_MAGIC = b"Pad to make it do more than one iteration"


def generate_authenticator_response(
    password_hash: bytes,
    nt_response: bytes,
    peer_challenge: bytes,
    authenticator_challenge: bytes,
    username: bytes,
) -> bytes:
    """GenerateAuthenticatorResponse, as the 20 raw bytes; on the wire it is "S=" and 40 upper-case hex
    digits (`"S=" + value.hex().upper()`)."""
    _check_len("NT-Response", nt_response, NT_RESPONSE_BYTES)
    digest = _sha1(hash_nt_password_hash(password_hash), nt_response, _SIGNING_MAGIC)
    return _sha1(digest, challenge_hash(peer_challenge, authenticator_challenge, username), _PAD_MAGIC)


def check_authenticator_response(
    password_hash: bytes,
    nt_response: bytes,
    peer_challenge: bytes,
    authenticator_challenge: bytes,
    username: bytes,
    received: bytes,
) -> bool:
    """CheckAuthenticatorResponse, on the 20 bytes the "S=" hex decodes to; compared in constant time."""
    expected = generate_authenticator_response(
        password_hash, nt_response, peer_challenge, authenticator_challenge, username
    )
    return hmac.compare_digest(expected, received)


_MASTER_MAGIC = b"This is the MPPE Master Key"
_CLIENT_SEND_MAGIC = b"On the client side, this is the send key; on the server side, it is the receive key."
_CLIENT_RECEIVE_MAGIC = (
    b"On the client side, this is the receive key; on the server side, it is the send key."
)
_SHS_PAD1 = bytes(40)
_SHS_PAD2 = b"\xf2" * 40


def get_master_key(password_hash_hash: bytes, nt_response: bytes) -> bytes:
    """GetMasterKey (RFC 3079 §3.4): 16 bytes of SHA-1(PasswordHashHash | NT-Response | Magic1)."""
    _check_len("password hash hash", password_hash_hash, 16)
    _check_len("NT-Response", nt_response, NT_RESPONSE_BYTES)
    return _sha1(password_hash_hash, nt_response, _MASTER_MAGIC)[:16]


def get_asymmetric_start_key(master_key: bytes, length: int, *, is_send: bool, is_server: bool) -> bytes:
    """GetAsymmetricStartKey (RFC 3079 §3.4): the client's send key is the server's receive key and the other
    way round; `length` is 8 or 16."""
    if length not in (8, 16):
        raise ValueError(f"MPPE start keys are 8 or 16 bytes, not {length}")
    client_send = is_send != is_server
    magic = _CLIENT_SEND_MAGIC if client_send else _CLIENT_RECEIVE_MAGIC
    return _sha1(master_key, _SHS_PAD1, magic, _SHS_PAD2)[:length]


def msk(password_hash: bytes, nt_response: bytes) -> bytes:
    """The 64-byte EAP-MSCHAPv2 MSK: MasterReceiveKey | MasterSendKey | 32 zero bytes, in the authenticator's
    names ([MS-CHAP], strongSwan's GenerateMSK), i.e. the peer's send key then its receive key.

    With an HMAC PRF the 32 zero bytes do not change the IKEv2 AUTH value (HMAC pads its key with zeros to
    the block size), so peers that use only the first 32 bytes (Android's IKE library) interoperate."""
    master = get_master_key(hash_nt_password_hash(password_hash), nt_response)
    receive = get_asymmetric_start_key(master, 16, is_send=False, is_server=True)
    send = get_asymmetric_start_key(master, 16, is_send=True, is_server=True)
    return receive + send + bytes(32)


def _check_len(what: str, value: bytes, n: int) -> None:
    if not isinstance(value, bytes | bytearray) or len(value) != n:
        raise ValueError(f"the {what} must be {n} bytes")


# ---- packets (draft-kamath-pppext-eap-mschapv2) ------------------------------------------------------------
# The Type-Data of an EAP-MSCHAPv2 packet: OpCode, MS-CHAPv2-ID, MS-Length (= EAP Length - 5, i.e. the length
# of the Type-Data), then the OpCode's data. The peer's Success and Failure responses are the OpCode alone.


@dataclass(frozen=True)
class ChallengeRequest:
    mschapv2_id: int
    challenge: bytes  # 16 bytes, the AuthenticatorChallenge
    name: bytes  # the authenticator's name (strongSwan sends "strongSwan")

    def encode(self) -> bytes:
        body = bytes([CHALLENGE_BYTES]) + self.challenge + self.name
        return _header(OpCode.CHALLENGE, self.mschapv2_id, body) + body


@dataclass(frozen=True)
class SuccessRequest:
    mschapv2_id: int
    authenticator_response: bytes  # the 20 bytes of "S=<40 hex digits>"
    message: str  # M=, may be empty

    def encode(self) -> bytes:
        text = "S=" + self.authenticator_response.hex().upper()
        if self.message:
            text += " M=" + self.message
        body = text.encode()
        return _header(OpCode.SUCCESS, self.mschapv2_id, body) + body


@dataclass(frozen=True)
class FailureRequest:
    mschapv2_id: int
    error: int  # E=, e.g. 691
    retriable: bool  # R=1
    challenge: bytes | None  # C=, the next AuthenticatorChallenge for a retry
    version: int | None  # V=
    message: str  # M=

    @property
    def error_name(self) -> str:
        return error_name(self.error)

    def encode(self) -> bytes:
        parts = [f"E={self.error}", f"R={int(self.retriable)}"]
        if self.challenge is not None:
            parts.append("C=" + self.challenge.hex().upper())
        if self.version is not None:
            parts.append(f"V={self.version}")
        if self.message:
            parts.append("M=" + self.message)
        body = " ".join(parts).encode()
        return _header(OpCode.FAILURE, self.mschapv2_id, body) + body


@dataclass(frozen=True)
class Response:
    mschapv2_id: int
    peer_challenge: bytes
    nt_response: bytes
    name: bytes
    flags: int = 0

    def encode(self) -> bytes:
        body = (
            bytes([RESPONSE_VALUE_BYTES])
            + self.peer_challenge
            + bytes(8)
            + self.nt_response
            + bytes([self.flags])
            + self.name
        )
        return _header(OpCode.RESPONSE, self.mschapv2_id, body) + body


@dataclass(frozen=True)
class TerseResponse:
    """The peer's Success or Failure response: the OpCode alone."""

    opcode: int

    def encode(self) -> bytes:
        return bytes([self.opcode])


def _header(opcode: int, mschapv2_id: int, body: bytes) -> bytes:
    return bytes([opcode, mschapv2_id]) + (4 + len(body)).to_bytes(2, "big")


_REQUEST_OPCODES = "Challenge (1), Success (3) or Failure (4)"
_HEX40 = re.compile(rb"[0-9A-Fa-f]{40}")
_HEX32 = re.compile(r"[0-9A-Fa-f]{32}")
_MESSAGE_FIELD = re.compile(r"(?:^| )M=")


def decode_request(
    type_data: bytes, base_offset: int = TYPE_DATA_OFFSET
) -> ChallengeRequest | SuccessRequest | FailureRequest:
    """The Type-Data of an EAP-MSCHAPv2 Request; `base_offset` is where it sits in the EAP packet (5). Raises
    only EapDecodeError."""
    r = Reader(type_data, base_offset)
    opcode = r.u8("MS-CHAPv2 OpCode")
    if opcode not in (OpCode.CHALLENGE, OpCode.SUCCESS, OpCode.FAILURE):
        raise EapDecodeError(
            base_offset, f"a request OpCode: {_REQUEST_OPCODES}", f"found {_opcode_name(opcode)}"
        )
    mschapv2_id = _ms_header(r, len(type_data))
    if opcode == OpCode.CHALLENGE:
        size_at = r.offset
        size = r.u8("Value-Size")
        if size != CHALLENGE_BYTES:
            raise EapDecodeError(size_at, f"Value-Size {CHALLENGE_BYTES}", f"found {size}")
        challenge = r.take(CHALLENGE_BYTES, f"{CHALLENGE_BYTES}-byte challenge")
        return ChallengeRequest(mschapv2_id, challenge, r.rest())
    message_at = r.offset
    message = r.rest()
    if opcode == OpCode.SUCCESS:
        return _parse_success(mschapv2_id, message, message_at)
    return _parse_failure(mschapv2_id, message, message_at)


def decode_response(type_data: bytes, base_offset: int = TYPE_DATA_OFFSET) -> Response | TerseResponse:
    """The Type-Data of an EAP-MSCHAPv2 Response (what an authenticator receives). Raises only
    EapDecodeError."""
    r = Reader(type_data, base_offset)
    opcode = r.u8("MS-CHAPv2 OpCode")
    if opcode in (OpCode.SUCCESS, OpCode.FAILURE):
        r.expect_end(f"{_opcode_name(opcode)} response (the OpCode alone)")
        return TerseResponse(opcode)
    if opcode != OpCode.RESPONSE:
        raise EapDecodeError(
            base_offset,
            "a response OpCode: Response (2), Success (3) or Failure (4)",
            f"found {_opcode_name(opcode)}",
        )
    mschapv2_id = _ms_header(r, len(type_data))
    size_at = r.offset
    size = r.u8("Value-Size")
    if size != RESPONSE_VALUE_BYTES:
        raise EapDecodeError(size_at, f"Value-Size {RESPONSE_VALUE_BYTES}", f"found {size}")
    peer_challenge = r.take(CHALLENGE_BYTES, "16-byte peer challenge")
    r.take(8, "8 reserved bytes")
    nt_response = r.take(NT_RESPONSE_BYTES, "24-byte NT-Response")
    flags = r.u8("flags")
    return Response(mschapv2_id, peer_challenge, nt_response, r.rest(), flags)


def _opcode_name(opcode: int) -> str:
    try:
        return f"{OpCode(opcode).name.replace('_', '-').title()} ({opcode})"
    except ValueError:
        return f"OpCode {opcode}"


def _ms_header(r: Reader, type_data_bytes: int) -> int:
    """MS-CHAPv2-ID and MS-Length, which must cover the Type-Data exactly (hostapd drops packets where it does
    not, unless told to work around such servers; we report them)."""
    mschapv2_id = r.u8("MS-CHAPv2-ID")
    length_at = r.offset
    ms_length = r.u16("MS-Length")
    if ms_length != type_data_bytes:
        raise EapDecodeError(length_at, f"MS-Length {type_data_bytes} (EAP Length - 5)", f"found {ms_length}")
    return mschapv2_id


def _text(raw: bytes) -> str:
    # strongSwan's Success request ends with the NUL of its C string; Windows' does not.
    return raw.rstrip(b"\x00").decode("utf-8", "replace")


def _quote(raw: bytes) -> str:
    return repr(raw)[1:] if raw else "nothing"


def _parse_success(mschapv2_id: int, message: bytes, at: int) -> SuccessRequest:
    """ "S=<40 hex digits>", then optionally " M=<message>" (RFC 2759 §5)."""
    body = message.rstrip(b"\x00")
    if body[:2] != b"S=" or _HEX40.fullmatch(body[2:42]) is None:
        raise EapDecodeError(
            at, "S=<40 hex digits> (the authenticator response)", f"found {_quote(body[:42])}"
        )
    authenticator_response = bytes.fromhex(body[2:42].decode("ascii"))
    rest = body[42:]
    text = ""
    if rest.strip(b" "):
        stripped = rest.lstrip(b" ")
        if stripped == rest or not stripped.startswith(b"M="):
            raise EapDecodeError(
                at + 42, "' M=<message>' or the end of the Success message", f"found {_quote(rest[:20])}"
            )
        text = _text(stripped[2:])
    return SuccessRequest(mschapv2_id, authenticator_response, text)


def _parse_failure(mschapv2_id: int, message: bytes, at: int) -> FailureRequest:
    """ "E=eeeeeeeeee R=r C=cccccccccccccccccccccccccccccccc V=vvvvvvvvvv M=<msg>" (RFC 2759 §6). Only E= is
    required (strongSwan sends "E=691 R=1 C=<challenge>"); M= comes last and runs to the end; fields we do not
    know are ignored."""
    text = _text(message)
    found = _MESSAGE_FIELD.search(text)
    head, tail = (text[: found.start()], text[found.end() :]) if found else (text, "")
    fields: dict[str, str] = {}
    for token in head.split():
        key, sep, value = token.partition("=")
        if sep:
            fields.setdefault(key.upper(), value)

    def bad(field: str, expected: str) -> EapDecodeError:
        value = fields.get(field)
        shown = "no " + field + "=" if value is None else f"{field}={_quote(value.encode()[:40])}"
        return EapDecodeError(at, f"{expected} in the Failure message", f"found {shown}")

    error = fields.get("E")
    if error is None or not _decimal(error):
        raise bad("E", "E=<decimal error code>")
    retry = fields.get("R", "0")
    if retry not in ("0", "1"):
        raise bad("R", "R=0 or R=1")
    challenge: bytes | None = None
    if "C" in fields:
        if _HEX32.fullmatch(fields["C"]) is None:
            raise bad("C", "C=<32 hex digits>")
        challenge = bytes.fromhex(fields["C"])
    version: int | None = None
    if "V" in fields:
        if not _decimal(fields["V"]):
            raise bad("V", "V=<decimal version>")
        version = int(fields["V"])
    return FailureRequest(mschapv2_id, int(error), retry == "1", challenge, version, tail)


def _decimal(value: str) -> bool:
    return 0 < len(value) <= 10 and value.isascii() and value.isdigit()


# ---- events -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MsChapV2Challenge(EapEvent):
    """The server's Challenge arrived and we answered it; `server_name` is the Name it sent."""

    mschapv2_id: int
    server_name: str


@dataclass(frozen=True)
class MsChapV2ServerAuthenticated(EapEvent):
    """The Success request's S= matched: the server knows the password. `message` is its M=."""

    message: str


@dataclass(frozen=True)
class MsChapV2ServerRejected(EapEvent):
    """The Success request's S= did not match: the server does not know the password (or is not the one we
    meant to reach). We send nothing; RFC 2759 §5 says the peer ends the session."""

    reason: str


@dataclass(frozen=True)
class MsChapV2Failure(EapEvent):
    """A Failure request: the server refused us. We answered with a Failure response and do not retry."""

    error: int
    error_name: str
    retriable: bool
    version: int | None
    message: str
    explanation: str


# ---- the method -------------------------------------------------------------------------------------------


class MsChapV2State(Enum):
    EXPECT_CHALLENGE = "expect-challenge"
    EXPECT_RESULT = "expect-result"  # our Response is out; a Success or Failure request comes next
    SUCCEEDED = "succeeded"  # the server proved itself and our Success response is out
    FAILED = "failed"


@dataclass
class _Exchange:
    """Values of one Challenge/Response round that the Success request is checked against."""

    authenticator_response: bytes
    msk: bytes

    def __repr__(self) -> str:
        return "_Exchange(<secret>)"


class MsChapV2Method:
    """EAP-MSCHAPv2 for `EapPeer` (see `vpndoctor.eap.peer`). `rng(n)` returns n random bytes (the peer
    challenge); inject `os.urandom` or `secrets.token_bytes` in production, a fixed function in tests."""

    eap_type: int = EapType.MSCHAPV2

    def __init__(self, username: str, password: str, *, rng: Callable[[int], bytes]) -> None:
        self._init(username, nt_password_hash(password), rng)

    @classmethod
    def with_nt_hash(cls, username: str, nt_hash: bytes, *, rng: Callable[[int], bytes]) -> MsChapV2Method:
        """For a credential stored as its NT hash (as strongSwan's NTLM secrets are)."""
        _check_len("NT hash", nt_hash, 16)
        method = cls.__new__(cls)
        method._init(username, bytes(nt_hash), rng)
        return method

    def _init(self, username: str, nt_hash: bytes, rng: Callable[[int], bytes]) -> None:
        if not isinstance(username, str):
            raise TypeError(f"the user name must be a str, not {type(username).__name__}")
        name = username.encode("utf-8")
        if len(name) > MAX_NAME_BYTES:
            raise ValueError(f"an MS-CHAPv2 user name has at most {MAX_NAME_BYTES} bytes (RFC 2759)")
        self.username = username
        self._name = name
        self._nt_hash = nt_hash
        self._rng = rng
        self._exchange: _Exchange | None = None
        self._failure: str | None = None
        self.state = MsChapV2State.EXPECT_CHALLENGE

    def __repr__(self) -> str:
        return f"MsChapV2Method(username={self.username!r}, state={self.state.value})"

    @property
    def succeeded(self) -> bool:
        return self.state is MsChapV2State.SUCCEEDED

    @property
    def failure_reason(self) -> str | None:
        return self._failure

    def msk(self) -> bytes | None:
        if self.state is not MsChapV2State.SUCCEEDED or self._exchange is None:
            return None
        return self._exchange.msk

    def process(self, identifier: int, type_data: bytes) -> MethodStep:
        try:
            request = decode_request(type_data)
        except EapDecodeError as exc:
            self._fail(f"malformed EAP-MSCHAPv2 request: {exc}")
            raise
        if self.state is MsChapV2State.EXPECT_CHALLENGE and isinstance(request, ChallengeRequest):
            return self._on_challenge(request)
        if self.state is MsChapV2State.EXPECT_RESULT and isinstance(request, SuccessRequest):
            return self._on_success(request)
        if self.state is MsChapV2State.EXPECT_RESULT and isinstance(request, FailureRequest):
            return self._on_failure(request)
        got = type(request).__name__.removesuffix("Request")
        reason = f"unexpected MS-CHAPv2 {got} request in state {self.state.value}"
        self._fail(reason)
        raise EapProtocolError(reason)

    def _fail(self, reason: str) -> None:
        self.state = MsChapV2State.FAILED
        if self._failure is None:
            self._failure = reason

    def _on_challenge(self, request: ChallengeRequest) -> MethodStep:
        peer_challenge = self._rng(CHALLENGE_BYTES)
        if not isinstance(peer_challenge, bytes) or len(peer_challenge) != CHALLENGE_BYTES:
            raise ValueError(f"rng({CHALLENGE_BYTES}) must return {CHALLENGE_BYTES} bytes")
        nt_response = generate_nt_response(request.challenge, peer_challenge, self._name, self._nt_hash)
        self._exchange = _Exchange(
            authenticator_response=generate_authenticator_response(
                self._nt_hash, nt_response, peer_challenge, request.challenge, self._name
            ),
            msk=msk(self._nt_hash, nt_response),
        )
        self.state = MsChapV2State.EXPECT_RESULT
        reply = Response(request.mschapv2_id, peer_challenge, nt_response, self._name).encode()
        return MethodStep(reply, (MsChapV2Challenge(request.mschapv2_id, _text(request.name)),))

    def _on_success(self, request: SuccessRequest) -> MethodStep:
        assert self._exchange is not None
        if not hmac.compare_digest(self._exchange.authenticator_response, request.authenticator_response):
            reason = (
                "the server's MS-CHAPv2 authenticator response (S=) is wrong: it does not know this "
                "password, or it is not the server it claims to be"
            )
            self._fail(reason)
            return MethodStep(None, (MsChapV2ServerRejected(reason),))
        self.state = MsChapV2State.SUCCEEDED
        return MethodStep(
            TerseResponse(OpCode.SUCCESS).encode(), (MsChapV2ServerAuthenticated(request.message),)
        )

    def _on_failure(self, request: FailureRequest) -> MethodStep:
        explanation = _ERROR_TEXT.get(request.error, "an error code RFC 2759 does not list")
        if request.error == MsChapErrorCode.ERROR_PASSWD_EXPIRED:
            explanation += (
                "; changing it needs MS-CHAPv2 Change-Password, which vpndoctor does not support: change it "
                "from a Windows client or in the directory, then try again"
            )
        elif request.retriable:
            explanation += "; the server allows a retry, vpndoctor does not retry with the same password"
        self._fail(f"MS-CHAPv2 E={request.error} {request.error_name}: {explanation}")
        event = MsChapV2Failure(
            error=request.error,
            error_name=request.error_name,
            retriable=request.retriable,
            version=request.version,
            message=request.message,
            explanation=explanation,
        )
        return MethodStep(TerseResponse(OpCode.FAILURE).encode(), (event,))
