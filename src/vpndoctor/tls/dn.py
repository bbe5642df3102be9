"""A small strict DER walker for X.501 distinguished names, rendered as RFC 4514 text.

CertificateRequest lists the CAs a server accepts client certificates from as bare DER Names; cryptography
has no public loader for a lone Name, so we walk the few DER constructs a Name uses (RFC 5280 4.1.2.4).
Every length is checked; any failure is a `TlsDecodeError` with an absolute offset.
"""

from __future__ import annotations

from dataclasses import dataclass

from vpndoctor.tls.errors import TlsDecodeError

_SEQUENCE = 0x30
_SET = 0x31
_OID = 0x06
MAX_NAME_ITEMS = 256  # RDNs or attributes per name; real names have a handful

SHORT_NAMES: dict[str, str] = {
    "2.5.4.3": "CN",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.9": "STREET",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
    "1.2.840.113549.1.9.1": "emailAddress",
}

# Universal string types -> codec. T61String is in practice Latin-1.
_STRING_TYPES: dict[int, str] = {
    12: "utf-8",  # UTF8String
    18: "ascii",  # NumericString
    19: "ascii",  # PrintableString
    20: "latin-1",  # T61String
    22: "ascii",  # IA5String
    26: "ascii",  # VisibleString
    28: "utf-32-be",  # UniversalString
    30: "utf-16-be",  # BMPString
}


@dataclass(frozen=True)
class Attribute:
    oid: str
    value: str | None  # None when the value is not a string type; `der` then holds the TLV
    der: bytes


def _tlv(data: bytes, pos: int, end: int, base: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER TLV at `pos`; definite, minimal lengths only."""
    if pos + 2 > end:
        raise TlsDecodeError(base + pos, "a DER tag and length")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise TlsDecodeError(base + pos, "a single-byte DER tag", f"found 0x{tag:02x}")
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 3:
            raise TlsDecodeError(base + pos - 1, "a definite DER length of at most 3 bytes")
        if pos + n > end:
            raise TlsDecodeError(base + pos, f"{n} DER length bytes")
        length = int.from_bytes(data[pos : pos + n], "big")
        if length < 0x80 or data[pos] == 0:
            raise TlsDecodeError(base + pos, "a minimal DER length")
        pos += n
    if pos + length > end:
        raise TlsDecodeError(base + pos, f"{length} bytes of DER content", f"{end - pos} left")
    return tag, pos, pos + length


MAX_OID_ARC_GROUPS = 19  # 7-bit groups: 133 bits, enough for any 128-bit arc


def _decode_oid(content: bytes, offset: int) -> str:
    if not content or content[-1] & 0x80:
        raise TlsDecodeError(offset, "a complete OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    groups = 0
    fresh = True
    for b in content:
        if fresh and b == 0x80:
            raise TlsDecodeError(offset, "a minimal OID arc encoding")
        # Real arcs fit 128 bits (UUID arcs under 2.25 are the largest); a longer one attacks str(int).
        groups += 1
        if groups > MAX_OID_ARC_GROUPS:
            raise TlsDecodeError(offset, "an OID arc of at most 128 bits")
        value = (value << 7) | (b & 0x7F)
        fresh = not b & 0x80
        if fresh:
            arcs.append(value)
            value, groups = 0, 0
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(a) for a in head + arcs[1:])


def parse_name(der: bytes, base_offset: int = 0) -> list[list[Attribute]]:
    """RDNs in DER order (most significant first), each a list of attributes."""
    tag, start, end = _tlv(der, 0, len(der), base_offset)
    if tag != _SEQUENCE:
        raise TlsDecodeError(base_offset, "a Name SEQUENCE", f"found tag 0x{tag:02x}")
    if end != len(der):
        raise TlsDecodeError(base_offset + end, "end of Name", f"{len(der) - end} extra bytes")
    rdns: list[list[Attribute]] = []
    pos = start
    while pos < end:
        if len(rdns) >= MAX_NAME_ITEMS:
            raise TlsDecodeError(base_offset + pos, f"at most {MAX_NAME_ITEMS} RDNs")
        tag, s_start, s_end = _tlv(der, pos, end, base_offset)
        if tag != _SET:
            raise TlsDecodeError(base_offset + pos, "an RDN SET", f"found tag 0x{tag:02x}")
        attrs: list[Attribute] = []
        apos = s_start
        while apos < s_end:
            if len(attrs) >= MAX_NAME_ITEMS:
                raise TlsDecodeError(base_offset + apos, f"at most {MAX_NAME_ITEMS} attributes per RDN")
            tag, a_start, a_end = _tlv(der, apos, s_end, base_offset)
            if tag != _SEQUENCE:
                raise TlsDecodeError(base_offset + apos, "an AttributeTypeAndValue SEQUENCE")
            otag, o_start, o_end = _tlv(der, a_start, a_end, base_offset)
            if otag != _OID:
                raise TlsDecodeError(base_offset + a_start, "an attribute type OID")
            oid = _decode_oid(der[o_start:o_end], base_offset + o_start)
            vtag, v_start, v_end = _tlv(der, o_end, a_end, base_offset)
            if v_end != a_end:
                raise TlsDecodeError(base_offset + v_end, "end of AttributeTypeAndValue")
            attrs.append(Attribute(oid, _decode_string(vtag, der[v_start:v_end]), der[o_end:v_end]))
            apos = a_end
        if not attrs:
            raise TlsDecodeError(base_offset + pos, "a non-empty RDN")
        rdns.append(attrs)
        pos = s_end
    return rdns


def _decode_string(tag: int, content: bytes) -> str | None:
    codec = _STRING_TYPES.get(tag)
    if codec is None:
        return None
    try:
        return content.decode(codec)
    except UnicodeDecodeError:
        return None


def _escape(value: str) -> str:
    out: list[str] = []
    for i, ch in enumerate(value):
        if ch in ',+"\\<>;' or (i == 0 and ch in "# ") or (i == len(value) - 1 and ch == " "):
            out.append("\\" + ch)
        elif ch == "\0":
            out.append("\\00")
        else:
            out.append(ch)
    return "".join(out)


def render_rfc4514(rdns: list[list[Attribute]]) -> str:
    """RFC 4514 text: RDNs in reverse order, short names for common types, `#hex` for non-strings."""
    parts = []
    for rdn in reversed(rdns):
        items = []
        for a in rdn:
            key = SHORT_NAMES.get(a.oid, a.oid)
            value = _escape(a.value) if a.value is not None else "#" + a.der.hex()
            items.append(f"{key}={value}")
        parts.append("+".join(items))
    return ",".join(parts)


def name_to_rfc4514(der: bytes, base_offset: int = 0) -> str:
    return render_rfc4514(parse_name(der, base_offset))
