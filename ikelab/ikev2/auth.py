"""AUTH with a pre-shared key (RFC 7296 §2.15).

    AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets> )
    SignedOctets = RealMessage | Nonce of the other side | prf(SK_px, IDx')

IDx' is the ID payload without its generic header; SK_pi MACs the initiator's ID and SK_pr the
responder's. The octets are returned piece by piece so the trace can show each one.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from ikelab.crypto.prf import KeyedPrf, Prf

KEY_PAD = b"Key Pad for IKEv2"


class PskAuth(NamedTuple):  # a tuple: cheaper to build than a frozen dataclass, four per handshake
    message: bytes
    nonce: bytes
    id_body: bytes
    maced_id: bytes
    signed_octets: bytes
    auth_key: bytes
    auth: bytes


def psk_auth(prf: Prf, psk: bytes, message: bytes, nonce: bytes, sk_p: bytes, id_body: bytes) -> PskAuth:
    maced_id = prf(sk_p, id_body)
    octets = message + nonce + maced_id
    auth_key, auth_prf = _auth_key(prf, psk)
    return PskAuth(message, nonce, id_body, maced_id, octets, auth_key, auth_prf(octets))


@lru_cache(maxsize=16)
def _auth_key(prf: Prf, psk: bytes) -> tuple[bytes, KeyedPrf]:
    """prf(Shared Secret, "Key Pad for IKEv2"), the same for every AUTH of a configuration, and
    prf keyed with it (a peer MACs two AUTH payloads a handshake with it: its own and the other's)."""
    key = prf(psk, KEY_PAD)
    return key, prf.keyed(key)
