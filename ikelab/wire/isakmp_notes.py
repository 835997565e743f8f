"""One-sentence explanations attached to decoded ISAKMP fields, for students reading the byte view."""

from __future__ import annotations

from .isakmp_constants import ExchangeType, NotifyType, PayloadType

EXCHANGE_NOTES: dict[int, str] = {
    ExchangeType.IDENTITY_PROTECTION: "Main mode: six messages; SA, then DH and nonces, then identities encrypted.",
    ExchangeType.AGGRESSIVE: "Aggressive mode: three messages; identities and the responder's hash travel in the clear.",
    ExchangeType.QUICK_MODE: "Quick mode (phase 2): negotiates an IPsec SA under the protection of the phase 1 SA.",
    ExchangeType.INFORMATIONAL: "Informational: a one-way notification or deletion, not acknowledged.",
    ExchangeType.TRANSACTION: "Transaction (mode config): asks for or pushes configuration such as an address.",
    ExchangeType.BASE: "Base exchange (RFC 2408 §4.4): rarely used.",
    ExchangeType.AUTHENTICATION_ONLY: "Authentication only exchange (RFC 2408 §4.6): rarely used.",
    ExchangeType.NEW_GROUP_MODE: "New group mode (RFC 2409 §6): defines a private DH group.",
}

PAYLOAD_NOTES: dict[int, str] = {
    PayloadType.SA: "Security Association: DOI, situation and the proposals offered, or the one chosen.",
    PayloadType.KE: "Key Exchange: the sender's Diffie-Hellman public value (the group is set by the SA).",
    PayloadType.ID: "Identification: who the sender is (phase 1) or which traffic the SA covers (quick mode).",
    PayloadType.CERT: "A certificate that vouches for the sender's public key.",
    PayloadType.CR: "Certificate request: asks the peer for a certificate from this CA.",
    PayloadType.HASH: "A prf over the exchange: HASH_I/HASH_R authenticate phase 1, HASH(1..3) protect quick mode.",
    PayloadType.SIG: "A signature over HASH_I or HASH_R with the sender's private key.",
    PayloadType.NONCE: "Random value mixed into SKEYID and the quick mode KEYMAT.",
    PayloadType.NOTIFICATION: "Carries an error or status notification.",
    PayloadType.DELETE: "Tells the peer that these SAs are being deleted.",
    PayloadType.VENDOR_ID: "Vendor ID: announces an implementation or an extension (NAT-T, DPD, ...).",
    PayloadType.NAT_D: "NAT discovery (RFC 3947): HASH(CKY-I | CKY-R | IP | port) of one end; a mismatch reveals a NAT.",
    PayloadType.NAT_D_DRAFT: "NAT discovery, draft numbering (payload 130 instead of 20).",
    PayloadType.NAT_OA: "NAT original address (RFC 3947 §5.2): the address before a NAT rewrote it.",
    PayloadType.NAT_OA_DRAFT: "NAT original address, draft numbering (payload 131 instead of 21).",
}

NOTIFY_NOTES: dict[int, str] = {
    NotifyType.INVALID_PAYLOAD_TYPE: "The peer met a payload type it does not know.",
    NotifyType.INVALID_COOKIE: "The peer knows no ISAKMP SA with these cookies.",
    NotifyType.INVALID_MAJOR_VERSION: "The peer does not speak this ISAKMP major version.",
    NotifyType.INVALID_EXCHANGE_TYPE: "The peer does not accept this exchange type here.",
    NotifyType.INVALID_MESSAGE_ID: "The Message ID was not one the peer expected.",
    NotifyType.INVALID_SPI: "An SPI the peer does not know.",
    NotifyType.NO_PROPOSAL_CHOSEN: "None of the offered proposals was acceptable.",
    NotifyType.PAYLOAD_MALFORMED: "The peer found the message malformed, or could not decrypt it into valid payloads.",
    NotifyType.INVALID_KEY_INFORMATION: "The KE payload is unusable (wrong group or value).",
    NotifyType.INVALID_ID_INFORMATION: "The identity, or the quick mode proxy IDs, were not acceptable.",
    NotifyType.INVALID_HASH_INFORMATION: "A HASH payload did not verify.",
    NotifyType.AUTHENTICATION_FAILED: "The peer could not authenticate us: HASH or signature wrong.",
    NotifyType.INITIAL_CONTACT: "This is the only ISAKMP SA with the peer: drop any old state for it.",
    NotifyType.RESPONDER_LIFETIME: "The responder uses a shorter lifetime than offered.",
    NotifyType.REPLAY_STATUS: "Whether the sender uses anti-replay on the new SA.",
    NotifyType.R_U_THERE: "Dead peer detection (RFC 3706): are you alive? The data is a sequence number.",
    NotifyType.R_U_THERE_ACK: "Dead peer detection: yes, I am alive.",
}


def notify_note(notify_type: int) -> str:
    if notify_type in NOTIFY_NOTES:
        return NOTIFY_NOTES[notify_type]
    if notify_type < 16384:
        return "Error notification."
    return "Status notification."
