"""ISAKMP/IKEv1 numbers: RFC 2408 (ISAKMP), RFC 2407 (IPsec DOI), RFC 2409 (IKE), RFC 3947 (NAT-T).

Names follow the RFCs and IANA's "Internet Key Exchange (IKE) Attributes" and "ISAKMP" registries.
DH group numbers are the same registry as IKEv2's (`ikev2_constants.DhId`).
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

from .ikev2_constants import name_of


class ExchangeType(IntEnum):
    BASE = 1
    IDENTITY_PROTECTION = 2  # IKEv1 main mode
    AUTHENTICATION_ONLY = 3
    AGGRESSIVE = 4
    INFORMATIONAL = 5
    TRANSACTION = 6  # mode config (draft-ietf-ipsec-isakmp-mode-cfg)
    QUICK_MODE = 32
    NEW_GROUP_MODE = 33


EXCHANGE_LABELS = {
    ExchangeType.IDENTITY_PROTECTION: "Main Mode",
    ExchangeType.AGGRESSIVE: "Aggressive Mode",
    ExchangeType.QUICK_MODE: "Quick Mode",
    ExchangeType.INFORMATIONAL: "Informational",
}


def exchange_label(exchange: int) -> str:
    """"Main Mode" rather than IDENTITY_PROTECTION: the names students meet in books and logs."""
    return EXCHANGE_LABELS.get(exchange) or name_of(ExchangeType, exchange)


class PayloadType(IntEnum):
    NONE = 0
    SA = 1
    PROPOSAL = 2
    TRANSFORM = 3
    KE = 4
    ID = 5
    CERT = 6
    CR = 7
    HASH = 8
    SIG = 9
    NONCE = 10
    NOTIFICATION = 11
    DELETE = 12
    VENDOR_ID = 13
    ATTRIBUTE = 14  # mode config
    NAT_D = 20  # RFC 3947
    NAT_OA = 21  # RFC 3947
    NAT_D_DRAFT = 130  # draft-ietf-ipsec-nat-t-ike-02/03
    NAT_OA_DRAFT = 131
    FRAGMENT = 132  # Cisco/strongSwan IKEv1 fragmentation


class HeaderFlags(IntFlag):
    ENCRYPTION = 0x01  # everything after the header is encrypted
    COMMIT = 0x02
    AUTHENTICATION_ONLY = 0x04


class Doi(IntEnum):
    ISAKMP = 0
    IPSEC = 1


class Situation(IntFlag):
    SIT_IDENTITY_ONLY = 0x01
    SIT_SECRECY = 0x02
    SIT_INTEGRITY = 0x04


class ProtocolId(IntEnum):
    ISAKMP = 1
    IPSEC_AH = 2
    IPSEC_ESP = 3
    IPCOMP = 4


class IkeTransformId(IntEnum):
    KEY_IKE = 1


class EspTransformId(IntEnum):
    ESP_DES_IV64 = 1
    ESP_DES = 2
    ESP_3DES = 3
    ESP_RC5 = 4
    ESP_IDEA = 5
    ESP_CAST = 6
    ESP_BLOWFISH = 7
    ESP_3IDEA = 8
    ESP_DES_IV32 = 9
    ESP_RC4 = 10
    ESP_NULL = 11
    ESP_AES = 12  # AES-CBC (RFC 3602)
    ESP_AES_CTR = 13
    ESP_AES_CCM_8 = 14
    ESP_AES_CCM_12 = 15
    ESP_AES_CCM_16 = 16
    ESP_AES_GCM_8 = 18
    ESP_AES_GCM_12 = 19
    ESP_AES_GCM_16 = 20
    ESP_NULL_AUTH_AES_GMAC = 21


class IkeAttribute(IntEnum):
    """Phase 1 SA attributes (RFC 2409 appendix A)."""

    ENCRYPTION_ALGORITHM = 1
    HASH_ALGORITHM = 2
    AUTHENTICATION_METHOD = 3
    GROUP_DESCRIPTION = 4
    GROUP_TYPE = 5
    GROUP_PRIME = 6
    GROUP_GENERATOR_ONE = 7
    GROUP_GENERATOR_TWO = 8
    GROUP_CURVE_A = 9
    GROUP_CURVE_B = 10
    LIFE_TYPE = 11
    LIFE_DURATION = 12
    PRF = 13
    KEY_LENGTH = 14
    FIELD_SIZE = 15
    GROUP_ORDER = 16


class IkeEncryption(IntEnum):
    DES_CBC = 1
    IDEA_CBC = 2
    BLOWFISH_CBC = 3
    RC5_R16_B64_CBC = 4
    TRIPLE_DES_CBC = 5
    CAST_CBC = 6
    AES_CBC = 7
    CAMELLIA_CBC = 8


class IkeHash(IntEnum):
    MD5 = 1
    SHA = 2
    TIGER = 3
    SHA2_256 = 4
    SHA2_384 = 5
    SHA2_512 = 6


class AuthMethod(IntEnum):
    PRE_SHARED_KEY = 1
    DSS_SIGNATURES = 2
    RSA_SIGNATURES = 3
    RSA_ENCRYPTION = 4
    REVISED_RSA_ENCRYPTION = 5
    ECDSA_SHA256_P256 = 9  # RFC 4754
    ECDSA_SHA384_P384 = 10
    ECDSA_SHA512_P521 = 11
    XAUTH_INIT_PRE_SHARED = 65001
    XAUTH_RESP_PRE_SHARED = 65002
    XAUTH_INIT_RSA = 65005
    XAUTH_RESP_RSA = 65006


class LifeType(IntEnum):
    SECONDS = 1
    KILOBYTES = 2


class IpsecAttribute(IntEnum):
    """Phase 2 (IPsec DOI) SA attributes (RFC 2407 §4.5, RFC 4304)."""

    SA_LIFE_TYPE = 1
    SA_LIFE_DURATION = 2
    GROUP_DESCRIPTION = 3
    ENCAPSULATION_MODE = 4
    AUTHENTICATION_ALGORITHM = 5
    KEY_LENGTH = 6
    KEY_ROUNDS = 7
    COMPRESS_DICTIONARY_SIZE = 8
    COMPRESS_PRIVATE_ALGORITHM = 9
    ECN_TUNNEL = 10
    EXTENDED_SEQUENCE_NUMBER = 11


class EncapsulationMode(IntEnum):
    TUNNEL = 1
    TRANSPORT = 2
    UDP_ENCAPSULATED_TUNNEL = 3  # RFC 3947
    UDP_ENCAPSULATED_TRANSPORT = 4
    UDP_ENCAPSULATED_TUNNEL_DRAFT = 61443
    UDP_ENCAPSULATED_TRANSPORT_DRAFT = 61444


class IpsecAuthAlgorithm(IntEnum):
    HMAC_MD5 = 1
    HMAC_SHA = 2
    DES_MAC = 3
    KPDK = 4
    HMAC_SHA2_256 = 5
    HMAC_SHA2_384 = 6
    HMAC_SHA2_512 = 7
    HMAC_RIPEMD = 8
    AES_XCBC_MAC = 9
    SIG_RSA = 10
    AES_128_GMAC = 11
    AES_192_GMAC = 12
    AES_256_GMAC = 13


class IdType(IntEnum):
    """IPsec DOI identification types (RFC 2407 §4.6.2.1)."""

    ID_IPV4_ADDR = 1
    ID_FQDN = 2
    ID_USER_FQDN = 3
    ID_IPV4_ADDR_SUBNET = 4
    ID_IPV6_ADDR = 5
    ID_IPV6_ADDR_SUBNET = 6
    ID_IPV4_ADDR_RANGE = 7
    ID_IPV6_ADDR_RANGE = 8
    ID_DER_ASN1_DN = 9
    ID_DER_ASN1_GN = 10
    ID_KEY_ID = 11


class CertEncoding(IntEnum):
    NONE = 0
    PKCS7_WRAPPED_X509 = 1
    PGP = 2
    DNS_SIGNED_KEY = 3
    X509_SIGNATURE = 4
    X509_KEY_EXCHANGE = 5
    KERBEROS_TOKENS = 6
    CRL = 7
    ARL = 8
    SPKI = 9
    X509_ATTRIBUTE = 10
    RAW_RSA_KEY = 11


class NotifyType(IntEnum):
    """Notify message types: errors (RFC 2408 §3.14.1), then status types (RFC 2407 §4.6.3, RFC 3706)."""

    INVALID_PAYLOAD_TYPE = 1
    DOI_NOT_SUPPORTED = 2
    SITUATION_NOT_SUPPORTED = 3
    INVALID_COOKIE = 4
    INVALID_MAJOR_VERSION = 5
    INVALID_MINOR_VERSION = 6
    INVALID_EXCHANGE_TYPE = 7
    INVALID_FLAGS = 8
    INVALID_MESSAGE_ID = 9
    INVALID_PROTOCOL_ID = 10
    INVALID_SPI = 11
    INVALID_TRANSFORM_ID = 12
    ATTRIBUTES_NOT_SUPPORTED = 13
    NO_PROPOSAL_CHOSEN = 14
    BAD_PROPOSAL_SYNTAX = 15
    PAYLOAD_MALFORMED = 16
    INVALID_KEY_INFORMATION = 17
    INVALID_ID_INFORMATION = 18
    INVALID_CERT_ENCODING = 19
    INVALID_CERTIFICATE = 20
    CERT_TYPE_UNSUPPORTED = 21
    INVALID_CERT_AUTHORITY = 22
    INVALID_HASH_INFORMATION = 23
    AUTHENTICATION_FAILED = 24
    INVALID_SIGNATURE = 25
    ADDRESS_NOTIFICATION = 26
    NOTIFY_SA_LIFETIME = 27
    CERTIFICATE_UNAVAILABLE = 28
    UNSUPPORTED_EXCHANGE_TYPE = 29
    UNEQUAL_PAYLOAD_LENGTHS = 30
    CONNECTED = 16384
    RESPONDER_LIFETIME = 24576
    REPLAY_STATUS = 24577
    INITIAL_CONTACT = 24578
    R_U_THERE = 36136  # RFC 3706 dead peer detection
    R_U_THERE_ACK = 36137


# Vendor IDs ikelab sends or recognises: MD5 hashes of a name, or fixed strings.
VENDOR_IDS: dict[bytes, str] = {
    bytes.fromhex("4a131c81070358455c5728f20e95452f"): "RFC 3947 (NAT-T)",
    bytes.fromhex("90cb80913ebb696e086381b5ec427b1f"): "draft-ietf-ipsec-nat-t-ike-02",
    bytes.fromhex("afcad71368a1f1c96b8696fc77570100"): "RFC 3706 (Dead Peer Detection)",
    bytes.fromhex("09002689dfd6b712"): "XAUTH",
    bytes.fromhex("4048b7d56ebce88525e7de7f00d6c2d380000000"): "Cisco Fragmentation",
}
NAT_T_VENDOR_ID = bytes.fromhex("4a131c81070358455c5728f20e95452f")  # MD5("RFC 3947")
DPD_VENDOR_ID = bytes.fromhex("afcad71368a1f1c96b8696fc77570100")
