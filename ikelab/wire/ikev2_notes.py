"""One-sentence explanations attached to decoded fields, for students reading the byte view."""

from __future__ import annotations

from .ikev2_constants import ExchangeType, NotifyType, PayloadType, TransformType

EXCHANGE_NOTES: dict[int, str] = {
    ExchangeType.IKE_SA_INIT: "First exchange: negotiates algorithms, swaps DH values and nonces, in the clear.",
    ExchangeType.IKE_AUTH: "Second exchange, encrypted: proves identities and creates the first Child SA.",
    ExchangeType.CREATE_CHILD_SA: "Creates or rekeys a Child SA, or rekeys the IKE SA itself.",
    ExchangeType.INFORMATIONAL: "Deletes SAs, reports errors, or (when empty) checks the peer is alive.",
    ExchangeType.IKE_SESSION_RESUME: "Resumes an IKE SA from a ticket (RFC 5723).",
    ExchangeType.IKE_INTERMEDIATE: "Extra exchange between IKE_SA_INIT and IKE_AUTH (RFC 9242).",
}

PAYLOAD_NOTES: dict[int, str] = {
    PayloadType.SA: "Security Association: the proposals (algorithm sets) offered, or the one chosen.",
    PayloadType.KE: "Key Exchange: the sender's Diffie-Hellman public value.",
    PayloadType.IDi: "Initiator's identity, which AUTH proves.",
    PayloadType.IDr: "Responder's identity, which AUTH proves.",
    PayloadType.CERT: "A certificate that vouches for the sender's public key.",
    PayloadType.CERTREQ: "Asks the peer for a certificate issued by one of the listed CAs.",
    PayloadType.AUTH: "Proof that the sender holds the secret behind its identity, over this exchange's messages.",
    PayloadType.NONCE: "Random value mixed into SKEYSEED, so every IKE SA gets fresh keys.",
    PayloadType.NOTIFY: "Carries an error or status notification.",
    PayloadType.DELETE: "Tells the peer that these SAs are being deleted.",
    PayloadType.VENDOR: "Vendor ID: an opaque marker announcing an implementation or an extension.",
    PayloadType.TSi: "Traffic selectors for the initiator's side: which packets the Child SA protects.",
    PayloadType.TSr: "Traffic selectors for the responder's side: which packets the Child SA protects.",
    PayloadType.SK: "Everything after this is encrypted and integrity-protected with SK_e*/SK_a*.",
    PayloadType.CP: "Configuration: asks for or assigns an internal address, DNS server and so on.",
    PayloadType.EAP: "Carries one EAP message for EAP authentication.",
    PayloadType.SKF: "One fragment of an encrypted message (RFC 7383), each encrypted on its own.",
}

TRANSFORM_NOTES: dict[int, str] = {
    TransformType.ENCR: "Encryption algorithm.",
    TransformType.PRF: "Pseudo-random function: derives SKEYSEED and all keys.",
    TransformType.INTEG: "Integrity algorithm (NONE with AEAD ciphers, which authenticate themselves).",
    TransformType.DH: "Diffie-Hellman group for the key exchange.",
    TransformType.ESN: "Whether ESP uses 64-bit extended sequence numbers.",
}

NOTIFY_NOTES: dict[int, str] = {
    NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD: "The peer met a critical payload it does not understand.",
    NotifyType.INVALID_IKE_SPI: "The peer knows no IKE SA with these SPIs.",
    NotifyType.INVALID_MAJOR_VERSION: "The peer does not speak this IKE major version.",
    NotifyType.INVALID_SYNTAX: "The peer found the message malformed.",
    NotifyType.INVALID_MESSAGE_ID: "The Message ID was outside the peer's window.",
    NotifyType.INVALID_SPI: "An ESP/AH packet arrived for an SPI the peer does not know.",
    NotifyType.NO_PROPOSAL_CHOSEN: "None of the offered proposals was acceptable.",
    NotifyType.INVALID_KE_PAYLOAD: "Wrong DH group guessed: the data names the group the responder wants.",
    NotifyType.AUTHENTICATION_FAILED: "The peer could not verify the AUTH payload.",
    NotifyType.SINGLE_PAIR_REQUIRED: "The responder only accepts a single pair of addresses as selectors.",
    NotifyType.NO_ADDITIONAL_SAS: "The responder refuses to create more Child SAs on this IKE SA.",
    NotifyType.INTERNAL_ADDRESS_FAILURE: "The responder could not assign an internal address.",
    NotifyType.FAILED_CP_REQUIRED: "The responder requires a configuration request that was missing.",
    NotifyType.TS_UNACCEPTABLE: "None of the proposed traffic selectors is acceptable.",
    NotifyType.INVALID_SELECTORS: "An ESP/AH packet did not match the Child SA's selectors.",
    NotifyType.TEMPORARY_FAILURE: "Try again later (e.g. a rekey collision).",
    NotifyType.CHILD_SA_NOT_FOUND: "The Child SA to rekey does not exist.",
    NotifyType.INITIAL_CONTACT: "This is the only IKE SA with the peer: drop any old state for it.",
    NotifyType.SET_WINDOW_SIZE: "How many requests the sender accepts in parallel.",
    NotifyType.NAT_DETECTION_SOURCE_IP: "SHA-1(SPIi | SPIr | IP | port) of the sender; a mismatch reveals a NAT.",
    NotifyType.NAT_DETECTION_DESTINATION_IP: "SHA-1(SPIi | SPIr | IP | port) of the receiver as the sender sees it.",
    NotifyType.COOKIE: "Anti-DoS cookie: the initiator must repeat its request with this value.",
    NotifyType.USE_TRANSPORT_MODE: "Asks for a transport-mode Child SA instead of tunnel mode.",
    NotifyType.REKEY_SA: "This CREATE_CHILD_SA rekeys the Child SA whose SPI is given.",
    NotifyType.ESP_TFC_PADDING_NOT_SUPPORTED: "The sender does not accept traffic flow confidentiality padding.",
    NotifyType.NON_FIRST_FRAGMENTS_ALSO: "Non-first IP fragments should also go through this Child SA.",
    NotifyType.MOBIKE_SUPPORTED: "The sender supports MOBIKE address changes (RFC 4555).",
    NotifyType.MULTIPLE_AUTH_SUPPORTED: "The sender supports several authentication rounds (RFC 4739).",
    NotifyType.REDIRECT_SUPPORTED: "The sender accepts being redirected to another gateway (RFC 5685).",
    NotifyType.CHILDLESS_IKEV2_SUPPORTED: "IKE_AUTH may finish without creating a Child SA (RFC 6023).",
    NotifyType.IKEV2_FRAGMENTATION_SUPPORTED: "The sender can fragment encrypted messages (RFC 7383).",
    NotifyType.SIGNATURE_HASH_ALGORITHMS: "Hash algorithms the sender accepts in digital signatures (RFC 7427).",
    NotifyType.INTERMEDIATE_EXCHANGE_SUPPORTED: "The sender supports IKE_INTERMEDIATE (RFC 9242).",
}


def notify_note(notify_type: int) -> str:
    if notify_type in NOTIFY_NOTES:
        return NOTIFY_NOTES[notify_type]
    if notify_type < 16384:
        return "Error notification: the request it answers failed."
    return "Status notification: information that does not make a request fail."
