"""IKE fragmentation (RFC 7383): cutting a large encrypted message into SKF fragments, and putting
the fragments a peer sent back together.

A certificate IKE_AUTH is bigger than many paths carry without IP fragmentation, and IP fragments
are often dropped by middleboxes. With fragmentation negotiated (IKEV2_FRAGMENTATION_SUPPORTED in
IKE_SA_INIT, both ways), a sender cuts the payload chain that would go into SK into pieces; each
piece travels in its own datagram as an SKF payload, padded, encrypted and authenticated on its
own, so a receiver checks every fragment's ICV before it keeps it and an attacker cannot inject
pieces. Only fragment 1 names the first inner payload; the others carry 0 there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ikelab.effects import Endpoint
from ikelab.esp.udp_encap import NAT_T_PORT
from ikelab.ikev2.ike_sa import IkeSa
from ikelab.ikev2.protection import ProtectionError, open_fragment, seal_fragment
from ikelab.wire.ikev2 import EncryptedFragmentPayload, Header
from ikelab.wire.ikev2_constants import PayloadType

# strongSwan's charon.fragment_size: the largest IP datagram a fragment may fill (RFC 7383 §2.5.1
# leaves the value to the implementation; 1280 is the IPv6 minimum MTU, safe on IPv4 paths too).
DEFAULT_FRAGMENT_SIZE = 1280
MIN_FRAGMENT_SIZE = 576  # the IPv4 minimum every host must accept (RFC 791)
# Bounds on what a peer can make us hold while we wait for the rest of a message.
MAX_FRAGMENTS = 64
MAX_REASSEMBLED_BYTES = 64 * 1024

IKE_HEADER = 28
SKF_HEADER = 8  # generic payload header and Fragment Number / Total Fragments
UDP_HEADER = 8
NON_ESP_MARKER = 4  # before IKE on port 4500 (RFC 3948)


def ike_budget(fragment_size: int, local: Endpoint) -> int:
    """Bytes of IKE message that fit into an IP datagram of `fragment_size` bytes from `local`."""
    ip_header = 40 if ":" in local.host else 20  # IPv6 text has colons, IPv4 never (no parse per message)
    marker = NON_ESP_MARKER if local.port == NAT_T_PORT else 0
    return fragment_size - ip_header - UDP_HEADER - marker


def chunk_limit(sa: IkeSa, budget: int) -> int:
    """The largest share of the payload chain one fragment can carry within `budget` bytes."""
    cipher = sa.ike.cipher
    icv_length = cipher.icv_length if cipher.is_aead else sa.ike.integrity.icv_length
    room = budget - IKE_HEADER - SKF_HEADER - cipher.iv_length - icv_length  # for data, padding and pad length
    return max(room // cipher.block_size * cipher.block_size - 1, 1)


def split(sa: IkeSa, header: Header, first_inner: int, chain: bytes, budget: int, ivs) -> list[tuple[bytes, bytes]]:
    """Seal `chain` as SKF fragments of at most `budget` bytes each: [(datagram, padded plaintext)].

    `ivs(n)` draws the IV of fragment n: every fragment is encrypted on its own (RFC 7383 §2.5).
    """
    size = chunk_limit(sa, budget)
    chunks = [chain[i : i + size] for i in range(0, len(chain), size)] or [b""]
    total = len(chunks)
    return [seal_fragment(sa, header, first_inner, chunk, n, total, ivs(n)) for n, chunk in enumerate(chunks, 1)]


@dataclass
class Reassembly:
    """The fragments of one message (by message ID and direction) that arrived so far, checked."""

    message_id: int
    is_response: bool
    total: int
    first_inner: int = 0
    chunks: dict[int, bytes] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(len(c) for c in self.chunks.values())


@dataclass(frozen=True)
class Accepted:
    """What one arriving fragment did: `reason` says why it was dropped, or `chain` is the whole
    payload chain once the last missing fragment arrived."""

    plaintext: bytes | None = None  # this fragment's decrypted data with padding, once its ICV checked
    reason: str = ""  # non-empty: the fragment was dropped
    note: str = ""  # what happened, for the trace
    chain: bytes | None = None
    first_inner: int = 0
    total: int = 0


def accept(sa: IkeSa, data: bytes, header: Header, fragment: EncryptedFragmentPayload) -> Accepted:
    """Check one SKF fragment and add it to the message being reassembled (RFC 7383 §2.6)."""
    number, total = fragment.fragment_number, fragment.total_fragments
    if not 1 <= number <= total:
        return Accepted(reason=f"fragment {number} of {total} is out of range")
    if total > MAX_FRAGMENTS:
        return Accepted(reason=f"{total} fragments announced, more than the {MAX_FRAGMENTS} we reassemble")
    # One slot per direction: a peer's fragmented request may arrive while we still reassemble its
    # fragmented response to our own request (RFC 7383 §2.6 keys reassembly by message ID and direction).
    slots = sa.reassembly
    current = slots.get(header.is_response)
    if current is not None and current.message_id == header.message_id:
        if number in current.chunks and total == current.total:
            return Accepted(reason=f"fragment {number} of {total} arrived again (a duplicate): ignored")
        if total < current.total:
            # §2.6: fewer fragments than before is a stale copy; more means the sender cut it smaller.
            return Accepted(reason=f"fragment {number} says {total} fragments, fewer than the {current.total} seen: ignored")
    try:
        chunk, plaintext = open_fragment(sa, data, fragment, sender_is_initiator=header.is_initiator)
    except ProtectionError as e:
        return Accepted(reason=f"fragment {number} of {total}: {e}")
    note = ""
    if current is None or current.message_id != header.message_id:
        current = slots[header.is_response] = Reassembly(header.message_id, header.is_response, total)
    elif total > current.total:
        note = f"the sender now cuts this message into {total} fragments instead of {current.total}: starting over. "
        current = slots[header.is_response] = Reassembly(header.message_id, header.is_response, total)
    if current.size + len(chunk) > MAX_REASSEMBLED_BYTES:
        del slots[header.is_response]
        return Accepted(plaintext, reason=f"the fragments exceed {MAX_REASSEMBLED_BYTES} bytes: all dropped")
    current.chunks[number] = chunk
    if number == 1:
        current.first_inner = fragment.first_inner
    if len(current.chunks) < total:
        missing = sorted(set(range(1, total + 1)) - set(current.chunks))
        note += f"fragment {number} of {total} checked and kept; waiting for {', '.join(map(str, missing))}"
        return Accepted(plaintext, note=note)
    del slots[header.is_response]
    chain = b"".join(current.chunks[n] for n in range(1, total + 1))
    note += (
        f"fragment {number} of {total} completes the message: {total} fragments, each with its own ICV checked, "
        f"reassembled in order into {len(chain)} bytes of payloads (RFC 7383 §2.6)"
    )
    return Accepted(plaintext, note=note, chain=chain, first_inner=current.first_inner, total=total)


def message_length(sa: IkeSa, chain_length: int) -> int:
    """The length of an IKE message carrying `chain_length` bytes of payloads in one SK payload."""
    cipher = sa.ike.cipher
    icv_length = cipher.icv_length if cipher.is_aead else sa.ike.integrity.icv_length
    padded = chain_length + 1 + (-(chain_length + 1)) % cipher.block_size
    return IKE_HEADER + 4 + cipher.iv_length + padded + icv_length


def fragment_number(data: bytes) -> int | None:
    """The Fragment Number of a datagram whose first payload is SKF, without decoding it; else None."""
    if len(data) >= IKE_HEADER + SKF_HEADER and data[16] == PayloadType.SKF:
        return int.from_bytes(data[IKE_HEADER + 4 : IKE_HEADER + 6], "big")
    return None
