"""IKE fixtures the IKE harnesses share: one key set per cipher suite the SK code implements."""

from __future__ import annotations

import hashlib
import hmac

from vpndoctor.ike.constants import EncrId, IntegId, PrfId
from vpndoctor.ike.keys import CipherSuite, DirectionKeys

SUITES = (
    CipherSuite(EncrId.AES_CBC, 128, PrfId.HMAC_SHA1, IntegId.HMAC_SHA1_96, 14),
    CipherSuite(EncrId.AES_CBC, 192, PrfId.HMAC_SHA2_256, IntegId.HMAC_SHA2_256_128, 14),
    CipherSuite(EncrId.AES_CBC, 256, PrfId.HMAC_SHA2_384, IntegId.HMAC_SHA2_384_192, 20),
    CipherSuite(EncrId.AES_CBC, 256, PrfId.HMAC_SHA2_512, IntegId.HMAC_SHA2_512_256, 21),
    CipherSuite(EncrId.DES3, None, PrfId.HMAC_SHA1, IntegId.HMAC_SHA1_96, 2),
    CipherSuite(EncrId.AES_CBC, 128, PrfId.HMAC_SHA1, IntegId.HMAC_MD5_96, 2),
    CipherSuite(EncrId.AES_GCM_16, 128, PrfId.HMAC_SHA2_256, None, 19),
    CipherSuite(EncrId.AES_GCM_16, 256, PrfId.HMAC_SHA2_384, None, 20),
)
_HASHES = {12: hashlib.sha1, 16: hashlib.sha256, 24: hashlib.sha384, 32: hashlib.sha512}


def keys_for(suite: CipherSuite, seed: int) -> DirectionKeys:
    encr = bytes((seed + i) & 0xFF for i in range(suite.encr_key_bytes))
    integ = bytes((seed * 7 + i) & 0xFF for i in range(suite.integ_key_bytes)) if not suite.aead else None
    return DirectionKeys(encr, integ)


KEYS = tuple(keys_for(s, n) for n, s in enumerate(SUITES))


def with_valid_icv(raw: bytes, suite: CipherSuite, keys: DirectionKeys) -> bytes:
    """`raw` with its last ICV-sized bytes replaced by the right HMAC, so that a CBC message gets past the
    integrity check to the decryption and the padding."""
    n = suite.icv_bytes
    if suite.aead or keys.integ is None or len(raw) < n:
        return raw
    digest = hashlib.md5 if suite.integ == IntegId.HMAC_MD5_96 else _HASHES[n]
    return raw[:-n] + hmac.new(keys.integ, raw[:-n], digest).digest()[:n]
