"""`capture --keys` decryption (capture/decrypt.py `Decryptor`): a sequence of captured messages for IKE SAs
in a key table of every kind of line (tcpdump, Wireshark, each cipher, "no checking"), with SKF fragments
reassembled across messages. Each message is taken raw, raw with its ICV recomputed, or sealed from fuzzed
plaintext under the table's keys (so that the content decryption reveals is the fuzzer's)."""

from __future__ import annotations

from fuzz.harnesses._ike import with_valid_icv
from fuzz.harnesses._util import Bytes
from vpndoctor.capture.decrypt import Decryptor, parse_keys
from vpndoctor.cli.output import to_json
from vpndoctor.ike.errors import MalformedMessage
from vpndoctor.ike.message import Header
from vpndoctor.ike.sk import protect, protect_fragment

OURS = (MalformedMessage,)
MAX_MESSAGES = 32

_WIRESHARK = (  # SPIi, SPIr, encryption, integrity (a "-" key column stays empty)
    ("1111111111111111", "2222222222222222", 32, "AES-CBC-256 [RFC3602]", 32, "HMAC_SHA2_256_128 [RFC4868]"),
    ("3333333333333333", "4444444444444444", 24, "3DES [RFC2451]", 20, "HMAC_SHA1_96 [RFC2404]"),
    (
        "5555555555555555",
        "6666666666666666",
        20,
        "AES-GCM-128 with 16 octet ICV [RFC5282]",
        0,
        "NONE [RFC4306]",
    ),
    (
        "7777777777777777",
        "8888888888888888",
        16,
        "AES-CBC-128 [RFC3602]",
        0,
        "ANY 96-bits of Authentication [No Checking]",
    ),
    ("9999999999999999", "aaaaaaaaaaaaaaaa", 16, "NULL [RFC2410]", 0, "NONE [RFC4306]"),
)


def _key(label: str, n: int) -> str:
    return bytes((ord(label) * 16 + i) & 0xFF for i in range(n)).hex()


KEY_TEXT = (
    "\n".join(
        [
            "# tcpdump's ikev2pI2 secrets, then Wireshark ikev2_decryption_table lines",
            "ikev2 I 0x0001020304050607 0xc02e7a3031a03188 sha1:0x4ea8e662b07cdd430f6944c6723e4b82d5722418"
            " aes128:0x3f44bf47cafd8150591deb088199fcbf",
            "ikev2 R 0x0001020304050607 0xc02e7a3031a03188 sha1:0x515b0bd22e6d76b34fdb760aa7bfad80b109b75d"
            " aes128:0xbedb67ec7dc3d00cccac42e70cd63bde",
            *(
                f'{i},{r},{_key("e", ne)},{_key("f", ne)},"{encr}",{_key("a", na)},{_key("b", na)},"{integ}"'
                for i, r, ne, encr, na, integ in _WIRESHARK
            ),
        ]
    )
    + "\n"
)
TABLE = parse_keys(KEY_TEXT)
SAS = [
    (bytes.fromhex(spi_i), bytes.fromhex(spi_r))
    for spi_i, spi_r in (
        ("0001020304050607", "c02e7a3031a03188"),
        ("1111111111111111", "2222222222222222"),
        ("3333333333333333", "4444444444444444"),
        ("5555555555555555", "6666666666666666"),
        ("7777777777777777", "8888888888888888"),
    )
]


def _iv(n: int) -> bytes:
    return bytes(n)


def _sealed(r: Bytes) -> bytes | None:
    spi_i, spi_r = SAS[r.u8() % len(SAS)]
    flags = r.u8()
    header = Header(spi_i=spi_i, spi_r=spi_r, exchange=r.u8(), flags=flags, message_id=r.u8())
    entry = TABLE.lookup(spi_i, spi_r, header.is_initiator)
    if entry is None:
        return None
    number, total, first_inner = r.u8(), r.u8(), r.u8()
    plaintext = r.frame()[:60000]
    if number == 0 or total == 0:
        return protect(header, first_inner, plaintext, entry.keys, entry.suite, _iv)
    number, total = min(number, total), max(number, total)
    inner = first_inner if number == 1 else 0
    return protect_fragment(header, inner, number, total, plaintext, entry.keys, entry.suite, _iv)


def one_input(data: bytes) -> None:
    decryptor = Decryptor(TABLE)
    r = Bytes(data)
    now = 0.0
    for _ in range(MAX_MESSAGES):
        if not r.left:
            break
        mode = r.u8()
        now += (mode >> 2) / 8
        if mode & 3 == 3:
            raw = _sealed(r)
            if raw is None:
                continue
        else:
            raw = r.frame()
        try:
            header = Header.decode(raw)
        except MalformedMessage:
            continue
        if mode & 3 == 1:
            entry = TABLE.lookup(header.spi_i, header.spi_r, header.is_initiator)
            if entry is not None:
                raw = with_valid_icv(raw, entry.suite, entry.keys)
        result = decryptor.decrypt(header, raw, now)
        if result is not None:
            to_json(result)
