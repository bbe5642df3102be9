"""Decryption of captured IKEv2 SK/SKF payloads with keys the user supplies (`vpndoctor capture --keys`):
Wireshark's `ikev2_decryption_table` and tcpdump's `-E` `ikev2` lines, and a readable summary of what was
inside (identities, certificate subjects, AUTH method, EAP code/type, notifies, CP, SA and TS).

Strict first: the ICV (or the AES-GCM tag) is checked as RFC 7296 §3.14 defines it. When it does not match
but CBC decryption yields a well-formed payload chain, the content is shown as "not-verified" rather than
hidden: tcpdump's own test capture ikev2pI2.pcap is such a case (its ICV covers only IV and ciphertext), and
tcpdump and Wireshark both show such content with a warning. Only well-formed content is ever shown.
"""

from __future__ import annotations

import csv
import difflib
import ipaddress
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from vpndoctor.capture.model import Decrypted, DecryptedPayload, Integrity
from vpndoctor.capture.reader import open_without_blocking
from vpndoctor.errors import UsageError
from vpndoctor.ike.constants import (
    AuthMethod,
    CertEncoding,
    CfgAttr,
    CfgType,
    DhGroup,
    EapCode,
    EncrId,
    IntegId,
    NotifyType,
    PayloadType,
    PrfId,
    TsType,
    name_of,
)
from vpndoctor.ike.errors import MalformedMessage
from vpndoctor.ike.fragments import FragmentReassembler
from vpndoctor.ike.keys import (  # the private names: tcpdump's line format, to name a field at fault
    _KEY_RE,
    _SECRET_ENCR,
    _SECRET_INTEG,
    _SPI_RE,
    CipherSuite,
    DirectionKeys,
    SecretsFileError,
    parse_tcpdump_secrets,
)
from vpndoctor.ike.message import HEADER_BYTES, Header, decode_payload_chain
from vpndoctor.ike.payloads import (
    AuthPayload,
    CertPayload,
    CpPayload,
    EapPayload,
    IdPayload,
    NotifyPayload,
    Payload,
    SaPayload,
    TrafficSelector,
    TsPayload,
)
from vpndoctor.ike.sk import IntegrityCheckFailed, decrypt_unverified, unprotect

__all__ = ["Decryptor", "KeyTable", "WIRESHARK_ENCR", "WIRESHARK_INTEG", "load_keys", "parse_keys"]

# Wireshark's names (packet-isakmp.c, vs_ikev2_encr_algs / vs_ikev2_auth_algs) -> (ENCR id, key bits).
# The AES-GCM keys in the table carry the 4-byte salt after the key, as SK_e does (RFC 5282 §7.1).
WIRESHARK_ENCR: dict[str, tuple[int, int]] = {
    "3DES [RFC2451]": (EncrId.DES3, 192),
    "AES-CBC-128 [RFC3602]": (EncrId.AES_CBC, 128),
    "AES-CBC-192 [RFC3602]": (EncrId.AES_CBC, 192),
    "AES-CBC-256 [RFC3602]": (EncrId.AES_CBC, 256),
    "AES-GCM-128 with 16 octet ICV [RFC5282]": (EncrId.AES_GCM_16, 128),
    "AES-GCM-192 with 16 octet ICV [RFC5282]": (EncrId.AES_GCM_16, 192),
    "AES-GCM-256 with 16 octet ICV [RFC5282]": (EncrId.AES_GCM_16, 256),
}
# Names Wireshark knows that we do not decrypt: a line using them is skipped with a warning.
_WIRESHARK_ENCR_UNSUPPORTED = (
    "NULL [RFC2410]",
    *(f"AES-CTR-{b} [RFC5930]" for b in (128, 192, 256)),
    *(f"AES-GCM-{b} with {n} octet ICV [RFC5282]" for b in (128, 192, 256) for n in (8, 12)),
    *(f"AES-CCM-{b} with {n} octet ICV [RFC5282]" for b in (128, 192, 256) for n in (8, 12, 16)),
)
# name -> (integrity id, checked): "ANY n-bits" means "an ICV of n bits, do not check it"; we stand in an
# HMAC with that ICV size and never check it.
WIRESHARK_INTEG: dict[str, tuple[int, bool]] = {
    "HMAC_MD5_96 [RFC2403]": (IntegId.HMAC_MD5_96, True),
    "HMAC_SHA1_96 [RFC2404]": (IntegId.HMAC_SHA1_96, True),
    "HMAC_SHA2_256_128 [RFC4868]": (IntegId.HMAC_SHA2_256_128, True),
    "HMAC_SHA2_384_192 [RFC4868]": (IntegId.HMAC_SHA2_384_192, True),
    "HMAC_SHA2_512_256 [RFC4868]": (IntegId.HMAC_SHA2_512_256, True),
    "NONE [RFC4306]": (IntegId.NONE, True),
    "ANY 96-bits of Authentication [No Checking]": (IntegId.HMAC_SHA1_96, False),
    "ANY 128-bits of Authentication [No Checking]": (IntegId.HMAC_SHA2_256_128, False),
    "ANY 192-bits of Authentication [No Checking]": (IntegId.HMAC_SHA2_384_192, False),
    "ANY 256-bits of Authentication [No Checking]": (IntegId.HMAC_SHA2_512_256, False),
}
_WIRESHARK_INTEG_UNSUPPORTED = (
    "HMAC_MD5_128 [RFC4595]",
    "HMAC_SHA1_160 [RFC4595]",
    "HMAC_SHA2_256_96 [draft-ietf-ipsec-ciph-sha-256-00]",
    "ANY 64-bits of Authentication [No Checking]",
    "ANY 160-bits of Authentication [No Checking]",
)
_HMAC_KEY_BYTES: dict[int, int] = {
    IntegId.HMAC_MD5_96: 16,
    IntegId.HMAC_SHA1_96: 20,
    IntegId.HMAC_SHA2_256_128: 32,
    IntegId.HMAC_SHA2_384_192: 48,
    IntegId.HMAC_SHA2_512_256: 64,
}
_MAX_KEY_FILE_BYTES = 16 * 1024 * 1024
# A field that should name an algorithm is echoed in an error only when it is a name we know (of either
# format): with the columns shifted it holds a key, and no error may show a key or any part of one.
_KNOWN_NAMES = frozenset(
    n.lower()
    for n in (
        *WIRESHARK_ENCR,
        *_WIRESHARK_ENCR_UNSUPPORTED,
        *WIRESHARK_INTEG,
        *_WIRESHARK_INTEG_UNSUPPORTED,
        *_SECRET_ENCR,
        *_SECRET_INTEG,
    )
)
_WIRESHARK_FIELDS = ("SPIi", "SPIr", "SK_ei", "SK_er", "encryption", "SK_ai", "SK_ar", "integrity")
_TCPDUMP_FIELDS = ("ikev2", "role", "SPIi", "SPIr", "integrity algorithm:key", "encryption algorithm:key")
_TCPDUMP_KEY_LENGTH = re.compile(r"found ([a-z0-9-]+) key of (\d+) bytes")
_MAX_PENDING_FRAGMENTED = 256  # fragmented messages being reassembled at once
_MAX_ITEMS = 64  # decrypted payloads described per message


@dataclass(frozen=True)
class _DirKeys:
    """The keys for messages one side sends, with a suite able to open them."""

    keys: DirectionKeys
    suite: CipherSuite
    checked: bool  # False: the table says "do not check the ICV"


class KeyTable:
    """Keys per IKE SA (SPIi, SPIr) and sending side (True: the original initiator sends)."""

    def __init__(self) -> None:
        self._keys: dict[tuple[bytes, bytes, bool], _DirKeys] = {}
        self.warnings: list[str] = []

    def __len__(self) -> int:
        return len({(i, r) for i, r, _ in self._keys})

    def add(self, spi_i: bytes, spi_r: bytes, by_initiator: bool, keys: _DirKeys) -> None:
        self._keys[(spi_i, spi_r, by_initiator)] = keys

    def lookup(self, spi_i: bytes, spi_r: bytes, by_initiator: bool) -> _DirKeys | None:
        return self._keys.get((spi_i, spi_r, by_initiator))

    def has_sa(self, spi_i: bytes, spi_r: bytes) -> bool:
        return (spi_i, spi_r, True) in self._keys or (spi_i, spi_r, False) in self._keys


def load_keys(path: str) -> KeyTable:
    """Read a key file; any problem is a UsageError naming the file (and line)."""
    try:
        with open_without_blocking(path) as fh:  # a named pipe with no writer: an error, not a hang
            data = fh.read(_MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"--keys {path}: {exc.strerror or exc}") from None
    if len(data) > _MAX_KEY_FILE_BYTES:
        raise UsageError(
            f"--keys {path}: larger than {_MAX_KEY_FILE_BYTES // (1024 * 1024)} MB, not a key file"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"--keys {path}: not a text file") from None
    return parse_keys(text, name=Path(path).name)


def parse_keys(text: str, *, name: str = "keys") -> KeyTable:
    """Parse Wireshark `ikev2_decryption_table` lines (SPIi,SPIr,SK_ei,SK_er,"encr",SK_ai,SK_ar,"integ")
    and tcpdump `ikev2 I|R ...` lines, in any mix; `#` comments and tcpdump ESP lines are skipped. A line
    that is neither raises UsageError; a line with an algorithm we cannot decrypt is skipped with a warning.
    """
    table = KeyTable()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"--keys {name} line {number}"
        first = line.split()[0]
        if first == "ikev2" or "@" in first or (" " not in line and "," not in line and ":" in line):
            try:
                secrets = parse_tcpdump_secrets(line)
            except SecretsFileError as exc:
                raise _tcpdump_error(where, line, exc) from None
            for s in secrets:
                suite = s.suite()
                table.add(s.spi_i, s.spi_r, s.initiator, _DirKeys(s.keys, suite, checked=True))
            continue
        if "," not in line:
            raise UsageError(
                f"{where}: expected a Wireshark ikev2_decryption_table line "
                '(SPIi,SPIr,SK_ei,SK_er,"encryption",SK_ai,SK_ar,"integrity") or a tcpdump '
                "'ikev2 I|R ...' line"
            )
        _parse_wireshark_line(table, line, where)
    if not len(table):
        if table.warnings:  # every line named an algorithm we cannot decrypt: say which
            raise UsageError(f"no usable IKEv2 keys: {table.warnings[0]}")
        raise UsageError(f"--keys {name}: no IKEv2 keys in the file")
    return table


def _tcpdump_error(where: str, line: str, exc: SecretsFileError) -> UsageError:
    """The error for a tcpdump line, naming the field at fault. `exc.found` quotes the field (a key, when
    the columns are shifted), so only its kind is used; `exc.expected` is our own text."""
    fields = line.split()
    found = exc.found or ""

    def at(index: int, label: str | None = None) -> UsageError:
        return UsageError(
            f"{where}: expected {exc.expected} in field {index + 1} ({label or _TCPDUMP_FIELDS[index]})"
        )

    if fields[0] != "ikev2":
        return at(0, "the first word")
    if len(fields) != len(_TCPDUMP_FIELDS):
        return UsageError(f"{where}: expected {exc.expected}, found {len(fields)} fields")
    if found.startswith("found role"):
        return at(1)
    if found.startswith("found SPI"):
        return at(2 if _SPI_RE.fullmatch(fields[2]) is None else 3)
    if found.startswith("found algorithm:key"):
        return at(4 if _KEY_RE.fullmatch(fields[4]) is None else 5)
    if found.startswith("found integrity algorithm"):
        return at(4, "integrity algorithm: not one we know")
    if found.startswith("found cipher"):
        return at(5, "encryption algorithm: not one we know")
    length = _TCPDUMP_KEY_LENGTH.match(found)
    if length is not None:  # a name parse_tcpdump_secrets accepted, and a count: no key
        name, size = length.groups()
        index = 4 if fields[4].split(":", 1)[0].lower() == name else 5
        return UsageError(f"{where}: expected {exc.expected} in field {index + 1} ({name} key), found {size}")
    return UsageError(f"{where}: expected {exc.expected}")


def _unknown_algorithm(where: str, index: int, kind: str, value: str, names: list[str]) -> UsageError:
    echo = f" {value!r}" if value.lower() in _KNOWN_NAMES else ""
    close = difflib.get_close_matches(value, names, n=1) if len(value) <= 64 else []
    # Only ever one of our own names, never the field.
    hint = f"did you mean {close[0]!r}?" if close else f'Wireshark names, e.g. "{names[0]}"'
    return UsageError(f"{where}: field {index + 1}, unknown {kind} algorithm{echo} ({hint})")


def _parse_wireshark_line(table: KeyTable, line: str, where: str) -> None:
    fields = [f.strip() for f in next(csv.reader([line], skipinitialspace=True))]
    if len(fields) != 8:
        raise UsageError(
            f"{where}: expected 8 comma-separated fields (SPIi,SPIr,SK_ei,SK_er,encryption,SK_ai,SK_ar,"
            f"integrity), found {len(fields)}"
        )
    spi_i, spi_r, sk_ei, sk_er, encr_name, sk_ai, sk_ar, integ_name = fields

    def hexfield(label: str, value: str, size: int | None = None) -> bytes:
        # Never quote `value`: it is (or, with the columns shifted, may be) a key.
        place = f"field {_WIRESHARK_FIELDS.index(label) + 1}, {label}"
        try:
            data = bytes.fromhex(value.removeprefix("0x"))
        except ValueError:
            raise UsageError(f"{where}: {place} is not hex") from None
        if size is not None and len(data) != size:
            raise UsageError(
                f"{where}: {place} must be {size} bytes ({2 * size} hex digits), found {len(data)}"
            )
        return data

    spis = hexfield("SPIi", spi_i, 8), hexfield("SPIr", spi_r, 8)
    if encr_name not in WIRESHARK_ENCR and encr_name not in _WIRESHARK_ENCR_UNSUPPORTED:
        raise _unknown_algorithm(
            where, 4, "encryption", encr_name, ["AES-CBC-256 [RFC3602]", *WIRESHARK_ENCR]
        )
    if integ_name not in WIRESHARK_INTEG and integ_name not in _WIRESHARK_INTEG_UNSUPPORTED:
        raise _unknown_algorithm(
            where, 7, "integrity", integ_name, ["HMAC_SHA2_256_128 [RFC4868]", *WIRESHARK_INTEG]
        )
    if encr_name in _WIRESHARK_ENCR_UNSUPPORTED or integ_name in _WIRESHARK_INTEG_UNSUPPORTED:
        table.warnings.append(f"{where}: {encr_name} / {integ_name} not supported for decryption; skipped")
        return
    encr, bits = WIRESHARK_ENCR[encr_name]
    integ, checked = WIRESHARK_INTEG[integ_name]
    aead = encr == EncrId.AES_GCM_16
    if aead != (integ == IntegId.NONE):
        raise UsageError(
            f"{where}: {encr_name} needs integrity " + ("NONE [RFC4306]" if aead else "other than NONE")
        )
    suite = CipherSuite(encr=encr, encr_key_bits=bits, prf=PrfId.HMAC_SHA2_256, integ=integ, dh=DhGroup.NONE)
    for by_initiator, sk_e, sk_a, label in ((True, sk_ei, sk_ai, "i"), (False, sk_er, sk_ar, "r")):
        encr_key = hexfield(f"SK_e{label}", sk_e, suite.encr_key_bytes)
        integ_key: bytes | None = None
        if not aead:
            key_bytes = _HMAC_KEY_BYTES[integ]
            # "ANY" checks nothing: its key may be empty; stand in zeros of the HMAC's size.
            integ_key = hexfield(f"SK_a{label}", sk_a, key_bytes) if checked else bytes(key_bytes)
        table.add(
            spis[0], spis[1], by_initiator, _DirKeys(DirectionKeys(encr_key, integ_key), suite, checked)
        )


# --- decrypting --------------------------------------------------------------------------------------------


_FragKey = tuple[bytes, bytes, int, bool, bool]  # SPIi, SPIr, message id, response, I flag


@dataclass
class _Pending:
    reassembler: FragmentReassembler
    worst: Integrity  # the weakest integrity among the fragments so far
    detail: str | None


class Decryptor:
    """Decrypts the SK/SKF payload of captured messages whose IKE SA is in the key table, reassembling SKF
    fragments (RFC 7383) in capture time. Bounded: at most a few hundred fragmented messages in flight."""

    def __init__(self, table: KeyTable) -> None:
        self.table = table
        self._pending: OrderedDict[_FragKey, _Pending] = OrderedDict()
        self.not_verified = 0
        self.failed = 0

    def decrypt(self, header: Header, data: bytes, now: float) -> Decrypted | None:
        """None when the message carries no SK/SKF payload or its IKE SA is not in the table."""
        if header.next_payload not in (PayloadType.SK, PayloadType.SKF) and not _has_encrypted(data):
            return None
        keys = self.table.lookup(header.spi_i, header.spi_r, header.is_initiator)
        if keys is None:
            return None
        integrity, detail, opened = _open(data, keys)
        if opened is None:
            self.failed += 1
            return Decrypted(integrity="failed", detail=detail, payloads=[], notifies=[], items=[])
        first_inner, plaintext, skf = opened
        if skf is None:
            return self._describe(integrity, detail, first_inner, plaintext, None)
        number, total = skf
        fkey: _FragKey = (
            header.spi_i,
            header.spi_r,
            header.message_id,
            header.is_response,
            header.is_initiator,
        )
        pending = self._pending.get(fkey)
        if pending is None:
            pending = self._pending[fkey] = _Pending(
                FragmentReassembler(max_fragments=512, max_total_bytes=1 << 20, timeout_s=60.0),
                "verified",
                None,
            )
            while len(self._pending) > _MAX_PENDING_FRAGMENTED:
                self._pending.popitem(last=False)
        if integrity != "verified":
            pending.worst, pending.detail = integrity, detail
        try:
            whole = pending.reassembler.add(number, total, first_inner, plaintext, now)
        except MalformedMessage as exc:
            self._pending.pop(fkey, None)
            self.failed += 1
            return Decrypted(
                integrity="failed",
                detail=f"fragment {number}/{total}: {exc}",
                payloads=[],
                notifies=[],
                items=[],
            )
        if whole is None:
            if integrity == "not-verified":
                self.not_verified += 1
            return Decrypted(
                integrity=integrity,
                detail=detail
                or f"fragment {number}/{total}: the message is shown where its last fragment arrives",
                payloads=[],
                notifies=[],
                items=[],
            )
        del self._pending[fkey]  # a retransmission of the whole message reassembles afresh
        return self._describe(pending.worst, pending.detail, whole[0], whole[1], total)

    def _describe(
        self,
        integrity: Integrity,
        detail: str | None,
        first_inner: int,
        plaintext: bytes,
        fragments: int | None,
    ) -> Decrypted:
        try:
            payloads = decode_payload_chain(first_inner, plaintext)
        except MalformedMessage as exc:
            self.failed += 1
            why = "wrong keys?" if integrity != "verified" else "the sender is broken"
            return Decrypted(
                integrity="failed",
                detail=f"decrypted content is not a payload chain ({why}): {exc}",
                fragments=fragments,
                payloads=[],
                notifies=[],
                items=[],
            )
        if integrity == "not-verified":
            self.not_verified += 1
        return Decrypted(
            integrity=integrity,
            detail=detail,
            fragments=fragments,
            payloads=[name_of(PayloadType, p.payload_type) for p in payloads],
            notifies=[name_of(NotifyType, p.type) for p in payloads if isinstance(p, NotifyPayload)],
            items=[describe_payload(p) for p in payloads[:_MAX_ITEMS]],
        )


def _has_encrypted(data: bytes) -> bool:
    # SK/SKF is the last payload but need not be the first (RFC 7296 §3.14 allows payloads before it).
    offset, kind = HEADER_BYTES, data[16] if len(data) > 16 else 0
    while kind and offset + 4 <= len(data):
        if kind in (PayloadType.SK, PayloadType.SKF):
            return True
        length = int.from_bytes(data[offset + 2 : offset + 4], "big")
        if length < 4:
            return False
        kind, offset = data[offset], offset + length
    return False


def _open(
    data: bytes, keys: _DirKeys
) -> tuple[Integrity, str | None, tuple[int, bytes, tuple[int, int] | None] | None]:
    """(integrity, detail, (first inner type, plaintext, (fragment number, total) or None) or None)."""
    skf = _skf_numbers(data)
    integrity: Integrity = "verified"
    detail: str | None = None
    try:
        if not keys.checked:
            first, plain = decrypt_unverified(data, keys.keys, keys.suite)
            integrity, detail = "not-verified", "the key table asks for no integrity check (ANY n-bits)"
        else:
            first, plain = unprotect(data, keys.keys, keys.suite)
    except IntegrityCheckFailed as exc:
        if keys.suite.aead:
            return "failed", f"AES-GCM tag mismatch: wrong keys or altered message ({exc.found})", None
        try:
            first, plain = decrypt_unverified(data, keys.keys, keys.suite)
        except MalformedMessage as inner:
            return "failed", f"ICV mismatch and no readable plaintext: {inner}", None
        integrity = "not-verified"
        detail = "the ICV does not match RFC 7296 §3.14 (wrong SK_a, or a sender computing it differently)"
        if skf is None:  # a fragment's part cannot be judged alone; the reassembled chain is parsed later
            try:
                decode_payload_chain(first, plain)
            except MalformedMessage:
                return "failed", "ICV mismatch and the plaintext is not a payload chain: wrong keys", None
    except MalformedMessage as exc:
        return "failed", str(exc), None
    except ValueError as exc:  # keys of the wrong size for this message's suite
        return "failed", str(exc), None
    return integrity, detail, (first, plain, skf)


def _skf_numbers(data: bytes) -> tuple[int, int] | None:
    offset, kind = HEADER_BYTES, data[16] if len(data) > 16 else 0
    while kind and offset + 8 <= len(data):
        if kind == PayloadType.SKF:
            return int.from_bytes(data[offset + 4 : offset + 6], "big"), int.from_bytes(
                data[offset + 6 : offset + 8], "big"
            )
        if kind == PayloadType.SK:
            return None
        length = int.from_bytes(data[offset + 2 : offset + 4], "big")
        if length < 4:
            return None
        kind, offset = data[offset], offset + length
    return None


# --- describing ---------------------------------------------------------------------------------------------


def describe_payload(p: Payload) -> DecryptedPayload:
    """One decrypted payload as a line for people plus the facts worth querying."""
    kind = name_of(PayloadType, p.payload_type)
    if isinstance(p, IdPayload):
        return DecryptedPayload(type=kind, summary=p.display, identity=p.display)
    if isinstance(p, CertPayload):
        return _describe_cert(kind, p)
    if isinstance(p, AuthPayload):
        method = name_of(AuthMethod, p.method)
        return DecryptedPayload(type=kind, summary=f"{method}, {len(p.data)} bytes", auth_method=method)
    if isinstance(p, EapPayload):
        code = name_of(EapCode, p.code)
        eap_type = p.type_name
        text = f"{code} id {p.identifier}" + (f" {eap_type}" if eap_type else "")
        return DecryptedPayload(type=kind, summary=text, eap_code=code, eap_type=eap_type)
    if isinstance(p, NotifyPayload):
        text = p.name + (f" ({len(p.data)} bytes)" if p.data else "")
        return DecryptedPayload(type=kind, summary=text, notify=p.name)
    if isinstance(p, CpPayload):
        attrs = ", ".join(_cfg_attribute(t, v) for t, v in p.attributes[:32])
        return DecryptedPayload(
            type=kind, summary=f"{name_of(CfgType, p.cfg_type)}: {attrs or 'no attributes'}"
        )
    if isinstance(p, SaPayload):
        text = "; ".join(pr.description for pr in p.proposals[:8])
        more = f" (+{len(p.proposals) - 8} more)" if len(p.proposals) > 8 else ""
        return DecryptedPayload(type=kind, summary=(text or "no proposal") + more)
    if isinstance(p, TsPayload):
        text = ", ".join(_selector(s) for s in p.selectors[:16])
        return DecryptedPayload(type=kind, summary=text or "no selector")
    return DecryptedPayload(type=kind, summary=f"{len(p.encode_body())} bytes")


def _describe_cert(kind: str, p: CertPayload) -> DecryptedPayload:
    encoding = name_of(CertEncoding, p.encoding)
    if p.encoding != CertEncoding.X509_SIGNATURE:
        return DecryptedPayload(type=kind, summary=f"{encoding}, {len(p.data)} bytes")
    try:
        cert = x509.load_der_x509_certificate(p.data)
        subject, issuer = cert.subject.rfc4514_string(), cert.issuer.rfc4514_string()
    except ValueError as exc:  # hostile or broken DER: say so, never raise
        return DecryptedPayload(type=kind, summary=f"X.509 certificate that does not parse: {exc}"[:200])
    return DecryptedPayload(
        type=kind, summary=f"{subject or '(empty subject)'} (issuer {issuer})", subject=subject, issuer=issuer
    )


def _cfg_attribute(attr_type: int, value: bytes) -> str:
    name = name_of(CfgAttr, attr_type)
    if not value:
        return name
    if (
        attr_type
        in (
            CfgAttr.INTERNAL_IP4_ADDRESS,
            CfgAttr.INTERNAL_IP4_DNS,
            CfgAttr.INTERNAL_IP4_NETMASK,
            CfgAttr.INTERNAL_IP4_NBNS,
            CfgAttr.INTERNAL_IP4_DHCP,
        )
        and len(value) == 4
    ):
        return f"{name}={ipaddress.IPv4Address(value)}"
    if attr_type in (CfgAttr.INTERNAL_IP6_ADDRESS, CfgAttr.INTERNAL_IP6_SUBNET) and len(value) == 17:
        return f"{name}={ipaddress.IPv6Address(value[:16])}/{value[16]}"
    if attr_type == CfgAttr.INTERNAL_IP6_DNS and len(value) == 16:
        return f"{name}={ipaddress.IPv6Address(value)}"
    if attr_type == CfgAttr.INTERNAL_IP4_SUBNET and len(value) == 8:
        return f"{name}={ipaddress.IPv4Address(value[:4])}/{ipaddress.IPv4Address(value[4:])}"
    return f"{name} ({len(value)} bytes)"


def _selector(s: TrafficSelector) -> str:
    if s.ts_type not in (TsType.IPV4_ADDR_RANGE, TsType.IPV6_ADDR_RANGE):
        return name_of(TsType, s.ts_type)
    ports = "" if (s.start_port, s.end_port) == (0, 65535) else f" ports {s.start_port}-{s.end_port}"
    proto = "" if s.ip_protocol == 0 else f" proto {s.ip_protocol}"
    return f"{s.start_ip}-{s.end_ip}{proto}{ports}"
