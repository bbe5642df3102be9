"""IANA numbers of IKEv2 (RFC 7296 and the "Internet Key Exchange Version 2 (IKEv2) Parameters" registry).

Every wire number the codec, the engine and the reports use is an IntEnum member here; `name_of` renders
values we have no member for (peers send them) as e.g. "NOTIFY_16999" instead of failing.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag


class ExchangeType(IntEnum):
    IKE_SA_INIT = 34
    IKE_AUTH = 35
    CREATE_CHILD_SA = 36
    INFORMATIONAL = 37
    IKE_SESSION_RESUME = 38  # RFC 5723
    GSA_AUTH = 39  # G-IKEv2
    GSA_REGISTRATION = 40
    GSA_REKEY = 41
    IKE_INTERMEDIATE = 43  # RFC 9242
    IKE_FOLLOWUP_KE = 44  # RFC 9370


class HeaderFlag(IntFlag):
    """Bits of the IKE header's Flags octet (RFC 7296 section 3.1); the other bits are reserved."""

    INITIATOR = 0x08  # sent by the original initiator of the IKE SA
    VERSION = 0x10  # the sender could speak a higher major version
    RESPONSE = 0x20  # this message answers a request with the same message id


class PayloadType(IntEnum):
    NONE = 0
    SA = 33
    KE = 34
    IDi = 35
    IDr = 36
    CERT = 37
    CERTREQ = 38
    AUTH = 39
    NONCE = 40
    NOTIFY = 41
    DELETE = 42
    VENDOR_ID = 43
    TSi = 44
    TSr = 45
    SK = 46  # Encrypted and Authenticated (the issue said 48; RFC 7296 assigns 46, 48 is EAP)
    CP = 47
    EAP = 48
    GSPM = 49  # RFC 6467
    IDg = 50  # G-IKEv2
    GSA = 51
    KD = 52
    SKF = 53  # Encrypted and Authenticated Fragment, RFC 7383
    PS = 54  # Puzzle Solution, RFC 8019


class NotifyType(IntEnum):
    # Error types (< 16384): RFC 7296 section 3.10.1 and later RFCs.
    UNSUPPORTED_CRITICAL_PAYLOAD = 1
    INVALID_IKE_SPI = 4
    INVALID_MAJOR_VERSION = 5
    INVALID_SYNTAX = 7
    INVALID_MESSAGE_ID = 9
    INVALID_SPI = 11
    NO_PROPOSAL_CHOSEN = 14
    INVALID_KE_PAYLOAD = 17
    AUTHENTICATION_FAILED = 24
    SINGLE_PAIR_REQUIRED = 34
    NO_ADDITIONAL_SAS = 35
    INTERNAL_ADDRESS_FAILURE = 36
    FAILED_CP_REQUIRED = 37
    TS_UNACCEPTABLE = 38
    INVALID_SELECTORS = 39
    UNACCEPTABLE_ADDRESSES = 40  # RFC 4555
    UNEXPECTED_NAT_DETECTED = 41  # RFC 4555
    USE_ASSIGNED_HoA = 42  # RFC 5026
    TEMPORARY_FAILURE = 43
    CHILD_SA_NOT_FOUND = 44
    INVALID_GROUP_ID = 45  # G-IKEv2
    AUTHORIZATION_FAILED = 46  # G-IKEv2
    STATE_NOT_FOUND = 47  # RFC 9370
    # Status types (>= 16384).
    INITIAL_CONTACT = 16384
    SET_WINDOW_SIZE = 16385
    ADDITIONAL_TS_POSSIBLE = 16386
    IPCOMP_SUPPORTED = 16387
    NAT_DETECTION_SOURCE_IP = 16388
    NAT_DETECTION_DESTINATION_IP = 16389
    COOKIE = 16390
    USE_TRANSPORT_MODE = 16391
    HTTP_CERT_LOOKUP_SUPPORTED = 16392
    REKEY_SA = 16393
    ESP_TFC_PADDING_NOT_SUPPORTED = 16394
    NON_FIRST_FRAGMENTS_ALSO = 16395
    MOBIKE_SUPPORTED = 16396  # RFC 4555
    ADDITIONAL_IP4_ADDRESS = 16397
    ADDITIONAL_IP6_ADDRESS = 16398
    NO_ADDITIONAL_ADDRESSES = 16399
    UPDATE_SA_ADDRESSES = 16400
    COOKIE2 = 16401
    NO_NATS_ALLOWED = 16402
    AUTH_LIFETIME = 16403  # RFC 4478
    MULTIPLE_AUTH_SUPPORTED = 16404  # RFC 4739
    ANOTHER_AUTH_FOLLOWS = 16405  # RFC 4739
    REDIRECT_SUPPORTED = 16406  # RFC 5685
    REDIRECT = 16407
    REDIRECTED_FROM = 16408
    TICKET_LT_OPAQUE = 16409  # RFC 5723
    TICKET_REQUEST = 16410
    TICKET_ACK = 16411
    TICKET_NACK = 16412
    TICKET_OPAQUE = 16413
    LINK_ID = 16414  # RFC 5739
    USE_WESP_MODE = 16415  # RFC 5840
    ROHC_SUPPORTED = 16416  # RFC 5857
    EAP_ONLY_AUTHENTICATION = 16417  # RFC 5998
    CHILDLESS_IKEV2_SUPPORTED = 16418  # RFC 6023
    QUICK_CRASH_DETECTION = 16419  # RFC 6290
    IKEV2_MESSAGE_ID_SYNC_SUPPORTED = 16420  # RFC 6311
    IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED = 16421
    IKEV2_MESSAGE_ID_SYNC = 16422
    IPSEC_REPLAY_COUNTER_SYNC = 16423
    SECURE_PASSWORD_METHODS = 16424  # RFC 6467
    PSK_PERSIST = 16425  # RFC 6631
    PSK_CONFIRM = 16426
    ERX_SUPPORTED = 16427  # RFC 6867
    IFOM_CAPABILITY = 16428
    SENDER_REQUEST_ID = 16429
    IKEV2_FRAGMENTATION_SUPPORTED = 16430  # RFC 7383
    SIGNATURE_HASH_ALGORITHMS = 16431  # RFC 7427
    CLONE_IKE_SA_SUPPORTED = 16432  # RFC 7791
    CLONE_IKE_SA = 16433
    PUZZLE = 16434  # RFC 8019
    USE_PPK = 16435  # RFC 8784
    PPK_IDENTITY = 16436
    NO_PPK_AUTH = 16437
    INTERMEDIATE_EXCHANGE_SUPPORTED = 16438  # RFC 9242
    IP4_ALLOWED = 16439  # RFC 8983
    IP6_ALLOWED = 16440
    ADDITIONAL_KEY_EXCHANGE = 16441  # RFC 9370
    USE_AGGFRAG = 16442  # RFC 9347


class TransformType(IntEnum):
    ENCR = 1
    PRF = 2
    INTEG = 3
    DH = 4  # "Key Exchange Method" since RFC 9370
    ESN = 5
    ADDKE1 = 6  # RFC 9370 additional key exchanges
    ADDKE2 = 7
    ADDKE3 = 8
    ADDKE4 = 9
    ADDKE5 = 10
    ADDKE6 = 11
    ADDKE7 = 12


class TransformAttr(IntEnum):
    KEY_LENGTH = 14  # the only IKEv2 transform attribute; always TV format, value in bits


class EncrId(IntEnum):
    DES_IV64 = 1
    DES = 2
    DES3 = 3  # ENCR_3DES; rendered "3DES" by name_of
    RC5 = 4
    IDEA = 5
    CAST = 6
    BLOWFISH = 7
    IDEA3 = 8  # ENCR_3IDEA; rendered "3IDEA"
    DES_IV32 = 9
    NULL = 11
    AES_CBC = 12
    AES_CTR = 13
    AES_CCM_8 = 14
    AES_CCM_12 = 15
    AES_CCM_16 = 16
    AES_GCM_8 = 18
    AES_GCM_12 = 19
    AES_GCM_16 = 20
    NULL_AUTH_AES_GMAC = 21
    CAMELLIA_CBC = 23
    CAMELLIA_CTR = 24
    CAMELLIA_CCM_8 = 25
    CAMELLIA_CCM_12 = 26
    CAMELLIA_CCM_16 = 27
    CHACHA20_POLY1305 = 28  # RFC 7634
    AES_CCM_8_IIV = 29  # RFC 8750
    AES_GCM_16_IIV = 30
    CHACHA20_POLY1305_IIV = 31


class PrfId(IntEnum):
    HMAC_MD5 = 1
    HMAC_SHA1 = 2
    HMAC_TIGER = 3
    AES128_XCBC = 4
    HMAC_SHA2_256 = 5
    HMAC_SHA2_384 = 6
    HMAC_SHA2_512 = 7
    AES128_CMAC = 8
    HMAC_STREEBOG_512 = 9


class IntegId(IntEnum):
    NONE = 0
    HMAC_MD5_96 = 1
    HMAC_SHA1_96 = 2
    DES_MAC = 3
    KPDK_MD5 = 4
    AES_XCBC_96 = 5
    HMAC_MD5_128 = 6
    HMAC_SHA1_160 = 7
    AES_CMAC_96 = 8
    AES_128_GMAC = 9
    AES_192_GMAC = 10
    AES_256_GMAC = 11
    HMAC_SHA2_256_128 = 12
    HMAC_SHA2_384_192 = 13
    HMAC_SHA2_512_256 = 14


class DhGroup(IntEnum):
    NONE = 0
    MODP_768 = 1
    MODP_1024 = 2
    MODP_1536 = 5
    MODP_2048 = 14
    MODP_3072 = 15
    MODP_4096 = 16
    MODP_6144 = 17
    MODP_8192 = 18
    ECP_256 = 19
    ECP_384 = 20
    ECP_521 = 21
    MODP_1024_160 = 22  # RFC 5114, with prime order subgroups
    MODP_2048_224 = 23
    MODP_2048_256 = 24
    ECP_192 = 25
    ECP_224 = 26
    BRAINPOOL_P224 = 27  # RFC 6954
    BRAINPOOL_P256 = 28
    BRAINPOOL_P384 = 29
    BRAINPOOL_P512 = 30
    CURVE25519 = 31  # RFC 8031
    CURVE448 = 32
    GOST3410_2012_256 = 33  # RFC 9385
    GOST3410_2012_512 = 34


class EsnId(IntEnum):
    NO_ESN = 0
    ESN = 1


class ProtocolId(IntEnum):
    NONE = 0  # in Notify: the notification concerns no particular SA
    IKE = 1
    AH = 2
    ESP = 3
    FC_ESP_HEADER = 4  # RFC 4595
    FC_CT_AUTHENTICATION = 5


class AuthMethod(IntEnum):
    RSA_SIG = 1
    SHARED_KEY = 2
    DSS = 3
    ECDSA_256 = 9  # RFC 4754
    ECDSA_384 = 10
    ECDSA_521 = 11
    GSPAM = 12  # RFC 6467
    NULL = 13  # RFC 7619
    DIGITAL_SIGNATURE = 14  # RFC 7427


class IdType(IntEnum):
    IPV4_ADDR = 1
    FQDN = 2
    RFC822_ADDR = 3
    IPV6_ADDR = 5
    DER_ASN1_DN = 9
    DER_ASN1_GN = 10
    KEY_ID = 11
    FC_NAME = 12  # RFC 4595
    NULL = 13  # RFC 7619


class CertEncoding(IntEnum):
    PKCS7_WRAPPED_X509 = 1
    PGP = 2
    DNS_SIGNED_KEY = 3
    X509_SIGNATURE = 4
    KERBEROS_TOKEN = 6
    CRL = 7
    ARL = 8
    SPKI = 9
    X509_ATTRIBUTE = 10
    RAW_RSA_KEY = 11
    HASH_URL_X509 = 12
    HASH_URL_X509_BUNDLE = 13
    OCSP_CONTENT = 14  # RFC 4806
    RAW_PUBLIC_KEY = 15  # RFC 7670


class HashAlgorithm(IntEnum):
    """RFC 7427 hash algorithms, listed in the SIGNATURE_HASH_ALGORITHMS notify (2 bytes each)."""

    SHA1 = 1
    SHA2_256 = 2
    SHA2_384 = 3
    SHA2_512 = 4
    IDENTITY = 5  # RFC 8420 (EdDSA)
    STREEBOG_256 = 6  # RFC 9385
    STREEBOG_512 = 7


class CfgType(IntEnum):
    REQUEST = 1
    REPLY = 2
    SET = 3
    ACK = 4


class CfgAttr(IntEnum):
    INTERNAL_IP4_ADDRESS = 1
    INTERNAL_IP4_NETMASK = 2
    INTERNAL_IP4_DNS = 3
    INTERNAL_IP4_NBNS = 4
    INTERNAL_ADDRESS_EXPIRY = 5  # RFC 4306, reserved since RFC 5996
    INTERNAL_IP4_DHCP = 6
    APPLICATION_VERSION = 7
    INTERNAL_IP6_ADDRESS = 8
    INTERNAL_IP6_NETMASK = 9  # RFC 4306, reserved since RFC 5996
    INTERNAL_IP6_DNS = 10
    INTERNAL_IP6_NBNS = 11  # RFC 4306, reserved since RFC 5996
    INTERNAL_IP6_DHCP = 12
    INTERNAL_IP4_SUBNET = 13
    SUPPORTED_ATTRIBUTES = 14
    INTERNAL_IP6_SUBNET = 15
    MIP6_HOME_PREFIX = 16  # RFC 5026
    INTERNAL_IP6_LINK = 17  # RFC 5739
    INTERNAL_IP6_PREFIX = 18
    HOME_AGENT_ADDRESS = 19  # RFC 5555
    P_CSCF_IP4_ADDRESS = 20  # RFC 7651
    P_CSCF_IP6_ADDRESS = 21
    FTT_KAT = 22  # RFC 8598
    EXTERNAL_SOURCE_IP4_NAT_INFO = 23
    TIMEOUT_PERIOD_FOR_LIVENESS_CHECK = 24
    INTERNAL_DNS_DOMAIN = 25  # RFC 8598
    INTERNAL_DNSSEC_TA = 26


class EapCode(IntEnum):
    REQUEST = 1
    RESPONSE = 2
    SUCCESS = 3
    FAILURE = 4
    INITIATE = 5  # RFC 6696
    FINISH = 6


class EapType(IntEnum):
    IDENTITY = 1
    NOTIFICATION = 2
    NAK = 3
    MD5 = 4
    OTP = 5
    GTC = 6
    TLS = 13
    LEAP = 17
    SIM = 18
    TTLS = 21
    AKA = 23
    PEAP = 25
    MSCHAPV2 = 26  # registered as "MS-EAP-Authentication"; what Windows calls EAP-MSCHAPv2
    FAST = 43
    PSK = 47
    IKEV2 = 49
    AKA_PRIME = 50
    PWD = 52
    TEAP = 55
    EXPANDED = 254
    EXPERIMENTAL = 255


class TsType(IntEnum):
    IPV4_ADDR_RANGE = 7
    IPV6_ADDR_RANGE = 8
    FC_ADDR_RANGE = 9  # RFC 4595
    SECLABEL = 10  # RFC 9478


# How name_of renders a value with no member: the prefix before "_<number>".
_UNKNOWN_PREFIX: dict[type[IntEnum], str] = {
    ExchangeType: "EXCHANGE",
    PayloadType: "PAYLOAD",
    NotifyType: "NOTIFY",
    TransformType: "TRANSFORM",
    TransformAttr: "ATTR",
    EncrId: "ENCR",
    PrfId: "PRF",
    IntegId: "INTEG",
    DhGroup: "DH",
    EsnId: "ESN",
    ProtocolId: "PROTO",
    AuthMethod: "AUTH",
    IdType: "ID",
    CertEncoding: "CERT",
    HashAlgorithm: "HASH",
    CfgType: "CFG",
    CfgAttr: "CFG_ATTR",
    EapCode: "EAP_CODE",
    EapType: "EAP_TYPE",
    TsType: "TS",
}

# Member names that cannot be Python identifiers as IANA spells them.
_DISPLAY: dict[tuple[type[IntEnum], int], str] = {
    (EncrId, EncrId.DES3): "3DES",
    (EncrId, EncrId.IDEA3): "3IDEA",
}


def name_of(enum_cls: type[IntEnum], value: int) -> str:
    """The registry name of `value` in `enum_cls`, or e.g. "NOTIFY_16999" when we have no member for it."""
    display = _DISPLAY.get((enum_cls, value))
    if display is not None:
        return display
    try:
        return enum_cls(value).name
    except ValueError:
        prefix = _UNKNOWN_PREFIX.get(enum_cls, enum_cls.__name__.upper())
        return f"{prefix}_{value}"


def transform_id_enum(transform_type: int) -> type[IntEnum] | None:
    """The enum that names transform ids of `transform_type` (ENCR -> EncrId ...), None if unknown."""
    if transform_type == TransformType.ENCR:
        return EncrId
    if transform_type == TransformType.PRF:
        return PrfId
    if transform_type == TransformType.INTEG:
        return IntegId
    if transform_type == TransformType.DH or TransformType.ADDKE1 <= transform_type <= TransformType.ADDKE7:
        return DhGroup
    if transform_type == TransformType.ESN:
        return EsnId
    return None
