"""IKEv2 messages and payloads: the public face of the codec (RFC 7296, RFC 7383)."""

from .ikev2_decode import DecodedMessage, decode_header, decode_message, decode_payloads
from .ikev2_message import HEADER_SIZE, Header, Message, encode_message, encode_payloads
from .ikev2_payloads import (
    AuthPayload,
    CertPayload,
    CertReqPayload,
    ConfigPayload,
    DeletePayload,
    EapPayload,
    EncryptedFragmentPayload,
    EncryptedPayload,
    IdPayload,
    KePayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    Proposal,
    SaPayload,
    TrafficSelector,
    Transform,
    TsPayload,
    UnknownPayload,
    VendorPayload,
    short_name,
)

__all__ = [
    "AuthPayload", "CertPayload", "CertReqPayload", "ConfigPayload", "DecodedMessage", "DeletePayload",
    "EapPayload", "EncryptedFragmentPayload", "EncryptedPayload", "HEADER_SIZE", "Header", "IdPayload",
    "KePayload", "Message", "NoncePayload", "NotifyPayload", "Payload", "Proposal", "SaPayload",
    "TrafficSelector", "Transform", "TsPayload", "UnknownPayload", "VendorPayload", "decode_header",
    "decode_message", "decode_payloads", "encode_message", "encode_payloads", "short_name",
]
