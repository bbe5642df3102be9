"""UDP encapsulation of ESP (RFC 3948) on the NAT-T port: what one UDP payload is, and the keepalive.

On port 4500 one socket carries IKE (behind the 4-octet non-ESP marker, RFC 3948 §2.2), ESP (an SPI, never
zero, first) and NAT keepalives (the single octet 0xFF, §2.3). A datagram shorter than an ESP header that
is not a keepalive is malformed.
"""

from __future__ import annotations

from typing import Literal

from vpndoctor.esp.errors import EspDecodeError

NON_ESP_MARKER = b"\x00\x00\x00\x00"
NAT_KEEPALIVE = b"\xff"

Kind = Literal["ike", "esp", "keepalive"]


def classify(datagram: bytes) -> Kind:
    """What a UDP payload on the NAT-T port carries; EspDecodeError when it is none of the three."""
    if datagram == NAT_KEEPALIVE:
        return "keepalive"
    if datagram[:4] == NON_ESP_MARKER:
        if len(datagram) < 4 + 28:
            raise EspDecodeError(4, "an IKE header (28 octets) after the non-ESP marker", "shorter")
        return "ike"
    if len(datagram) < 8:
        raise EspDecodeError(0, "an ESP header (8 octets), a non-ESP marker or a keepalive", "shorter")
    return "esp"


def spi_of(datagram: bytes) -> bytes:
    """The SPI of an ESP datagram (call `classify` first)."""
    return datagram[:4]
