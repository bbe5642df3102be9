"""Tests of the IKEv2 package; `sample_*` build the hand-made messages several test modules share."""

from __future__ import annotations

from vpndoctor.ike.constants import (
    DhGroup,
    EncrId,
    ExchangeType,
    IntegId,
    NotifyType,
    PayloadType,
    PrfId,
    ProtocolId,
    TransformType,
)
from vpndoctor.ike.message import INITIATOR, RESPONSE, Header, Message
from vpndoctor.ike.payloads import (
    EncryptedPayload,
    KePayload,
    NoncePayload,
    NotifyPayload,
    Proposal,
    SaPayload,
    Transform,
    VendorIdPayload,
)

SPI_I = bytes.fromhex("0001020304050607")
SPI_R = bytes.fromhex("c02e7a3031a03188")


def sample_proposal() -> Proposal:
    return Proposal(
        number=1,
        protocol=ProtocolId.IKE,
        spi=b"",
        transforms=(
            Transform(TransformType.ENCR, EncrId.AES_CBC, key_length=256),
            Transform(TransformType.PRF, PrfId.HMAC_SHA2_256),
            Transform(TransformType.INTEG, IntegId.HMAC_SHA2_256_128),
            Transform(TransformType.DH, DhGroup.MODP_2048),
        ),
    )


def sample_sa_init() -> Message:
    """An IKE_SA_INIT request like strongSwan sends: SA KE Ni N(NATD_S_IP) N(NATD_D_IP) N(FRAG_SUP) V."""
    header = Header(
        spi_i=SPI_I, spi_r=bytes(8), exchange=ExchangeType.IKE_SA_INIT, flags=INITIATOR, message_id=0
    )
    return Message(
        header=header,
        payloads=(
            SaPayload((sample_proposal(),)),
            KePayload(DhGroup.MODP_2048, bytes(range(256))),
            NoncePayload(bytes(range(32))),
            NotifyPayload(NotifyType.NAT_DETECTION_SOURCE_IP, data=bytes(20)),
            NotifyPayload(NotifyType.NAT_DETECTION_DESTINATION_IP, data=b"\x01" * 20),
            NotifyPayload(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED),
            VendorIdPayload(bytes.fromhex("882fe56d6fd20dbc2251613b2ebe5beb")),
        ),
    )


def sample_auth_request() -> Message:
    header = Header(spi_i=SPI_I, spi_r=SPI_R, exchange=ExchangeType.IKE_AUTH, flags=INITIATOR, message_id=1)
    return Message(header=header, payloads=(EncryptedPayload(PayloadType.IDi, bytes(range(80))),))


def sample_response_header(exchange: int = ExchangeType.IKE_SA_INIT, message_id: int = 0) -> Header:
    return Header(spi_i=SPI_I, spi_r=SPI_R, exchange=exchange, flags=RESPONSE, message_id=message_id)
