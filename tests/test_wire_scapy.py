"""Cross-check with an independent decoder: scapy's IKEv2 layer reads what we encode, and we read what it builds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.all import load_contrib

from ikelab.wire.ikev2 import (
    Header,
    KePayload,
    Message,
    NoncePayload,
    NotifyPayload,
    Proposal,
    SaPayload,
    Transform,
    VendorPayload,
    decode_message,
    encode_message,
)
from ikelab.wire.ikev2_constants import DhId, EncrId, ExchangeType, HeaderFlags, NotifyType, ProtocolId, TransformType

load_contrib("ikev2")
from scapy.contrib.ikev2 import (  # noqa: E402  (exists only after load_contrib)
    IKEv2,
    IKEv2_KE,
    IKEv2_Nonce,
    IKEv2_Notify,
    IKEv2_Proposal,
    IKEv2_SA,
    IKEv2_Transform,
    IKEv2_VendorID,
)

u16 = st.integers(0, 0xFFFF)

# Only what scapy models: Key Length as the sole transform attribute, no REDIRECT notifies (parsed apart).
sa_transforms = st.builds(Transform, type=st.integers(1, 5), id=u16, key_length=st.none() | u16)


@st.composite
def ike_sa_init_requests(draw) -> Message:
    count = draw(st.integers(1, 3))
    sa = SaPayload(
        [
            Proposal(i + 1, ProtocolId.IKE, b"", draw(st.lists(sa_transforms, min_size=1, max_size=5)))
            for i in range(count)
        ]
    )
    notifies = draw(
        st.lists(
            st.builds(
                NotifyPayload, notify_type=u16.filter(lambda t: t not in (16407, 16408)), data=st.binary(max_size=24)
            ),
            max_size=4,
        )
    )
    vendors = draw(st.lists(st.builds(VendorPayload, data=st.binary(min_size=1, max_size=20)), max_size=2))
    header = Header(
        draw(st.binary(min_size=8, max_size=8)), bytes(8), 0, ExchangeType.IKE_SA_INIT, HeaderFlags.INITIATOR, 0
    )
    payloads = [
        sa,
        KePayload(draw(u16), draw(st.binary(max_size=64))),
        NoncePayload(draw(st.binary(min_size=16, max_size=64))),
    ]
    return Message(header, payloads + notifies + vendors)


def scapy_view(data: bytes) -> list[tuple]:
    """The payloads as scapy sees them, in a neutral shape."""
    packet = IKEv2(data)
    view: list[tuple] = [
        ("HDR", packet.init_SPI, packet.resp_SPI, packet.exch_type, packet.flags, packet.id, packet.length)
    ]
    layer = packet.payload
    while layer:
        if isinstance(layer, IKEv2_SA):
            proposals, prop = [], layer.prop
            while isinstance(prop, IKEv2_Proposal):
                transforms, t = [], prop.trans
                while isinstance(t, IKEv2_Transform):
                    transforms.append((t.transform_type, t.transform_id, t.key_length if t.length > 8 else None))
                    t = t.payload
                proposals.append((prop.proposal, prop.proto, bytes(prop.SPI), transforms))
                prop = prop.payload
            view.append(("SA", proposals))
        elif isinstance(layer, IKEv2_KE):
            view.append(("KE", layer.group, bytes(layer.ke)))
        elif isinstance(layer, IKEv2_Nonce):
            view.append(("Nonce", bytes(layer.nonce)))
        elif isinstance(layer, IKEv2_Notify):
            view.append(("N", layer.type, layer.proto, bytes(layer.SPI), bytes(layer.notify)))
        elif isinstance(layer, IKEv2_VendorID):
            view.append(("V", bytes(layer.vendorID)))
        else:
            raise AssertionError(f"scapy saw an unexpected layer {layer.name}")
        layer = layer.payload
    return view


def our_view(msg: Message) -> list[tuple]:
    h = msg.header
    view: list[tuple] = [("HDR", h.spi_i, h.spi_r, h.exchange, h.flags, h.message_id, h.length)]
    for p in msg.payloads:
        match p:
            case SaPayload():
                view.append(
                    (
                        "SA",
                        [
                            (q.number, q.protocol, q.spi, [(t.type, t.id, t.key_length) for t in q.transforms])
                            for q in p.proposals
                        ],
                    )
                )
            case KePayload():
                view.append(("KE", p.group, p.data))
            case NoncePayload():
                view.append(("Nonce", p.data))
            case NotifyPayload():
                view.append(("N", p.notify_type, p.protocol, p.spi, p.data))
            case VendorPayload():
                view.append(("V", p.data))
    return view


@settings(max_examples=40, deadline=None)
@given(ike_sa_init_requests())
def test_scapy_reads_what_we_encode(msg: Message) -> None:
    data = encode_message(msg)
    assert scapy_view(data) == our_view(msg)


def test_we_read_what_scapy_builds() -> None:
    packet = (
        IKEv2(init_SPI=b"\x01" * 8, resp_SPI=b"\x00" * 8, exch_type=34, flags="Initiator", id=0)
        / IKEv2_SA(
            prop=IKEv2_Proposal(
                proposal=1,
                proto=1,
                trans_nb=2,
                trans=(
                    IKEv2_Transform(transform_type=1, transform_id=12, length=12, key_length=256)
                    / IKEv2_Transform(transform_type=4, transform_id=19)
                ),
            )
        )
        / IKEv2_KE(group=19, ke=b"\x04" * 64)
        / IKEv2_Nonce(nonce=b"\x5a" * 32)
        / IKEv2_Notify(type=16388, notify=b"\x11" * 20)
    )
    data = bytes(packet)
    msg = decode_message(data).message
    assert msg.summary() == "HDR, SA, KE, Ni, N(NAT_DETECTION_SOURCE_IP)"
    assert msg.find(SaPayload).proposals == [
        Proposal(
            1,
            ProtocolId.IKE,
            b"",
            [Transform(TransformType.ENCR, EncrId.ENCR_AES_CBC, 256), Transform(TransformType.DH, DhId.ECP_256)],
        )
    ]
    assert msg.find(KePayload) == KePayload(DhId.ECP_256, b"\x04" * 64)
    assert msg.notifies() == [NotifyPayload(NotifyType.NAT_DETECTION_SOURCE_IP, data=b"\x11" * 20)]
    assert encode_message(msg) == data
