"""Encode → decode round trips over every payload type, and the byte spans of the decoded tree.

The hypothesis strategies here are shared with the other test_wire_* modules.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from ikelab.wire.fields import Field
from ikelab.wire.ikev2 import (
    AuthPayload,
    CertPayload,
    CertReqPayload,
    ConfigPayload,
    DeletePayload,
    EapPayload,
    EncryptedFragmentPayload,
    EncryptedPayload,
    Header,
    IdPayload,
    KePayload,
    Message,
    NoncePayload,
    NotifyPayload,
    Proposal,
    SaPayload,
    TrafficSelector,
    Transform,
    TsPayload,
    UnknownPayload,
    VendorPayload,
    decode_message,
    decode_payloads,
    encode_message,
    encode_payloads,
)
from ikelab.wire.ikev2_constants import (
    CfgType,
    DhId,
    EncrId,
    ExchangeType,
    HeaderFlags,
    IdType,
    IntegId,
    NotifyType,
    PayloadType,
    PrfId,
    ProtocolId,
    TransformType,
    TsType,
    name_of,
)

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
small_bytes = st.binary(max_size=40)
KNOWN_TYPES = {int(t) for t in PayloadType}

# --- strategies ---

transforms = st.builds(
    Transform,
    type=u8,
    id=u16,
    key_length=st.none() | u16,
    attributes=st.lists(
        st.tuples(st.integers(0, 0x7FFF).filter(lambda t: t != 14), u16 | st.binary(max_size=8)), max_size=2
    ),
)

SPI_SIZE_CHOICES = {ProtocolId.IKE: [0, 8], ProtocolId.AH: [4], ProtocolId.ESP: [4]}


@st.composite
def proposals(draw, number: int) -> Proposal:
    protocol = draw(st.sampled_from([1, 2, 3, 200]))
    size = draw(st.sampled_from(SPI_SIZE_CHOICES.get(protocol, [0, 2, 4])))
    spi = draw(st.binary(min_size=size, max_size=size))
    return Proposal(number, protocol, spi, draw(st.lists(transforms, max_size=5)))


@st.composite
def sa_payloads(draw) -> SaPayload:
    count = draw(st.integers(1, 3))
    first = 1 if count > 1 else draw(st.integers(1, 255))  # an answer may carry any accepted number
    return SaPayload([draw(proposals(first + i)) for i in range(count)])


@st.composite
def notify_payloads(draw) -> NotifyPayload:
    protocol, spi_size = draw(st.sampled_from([(0, 0), (1, 0), (3, 0), (1, 8), (2, 4), (3, 4)]))
    spi = draw(st.binary(min_size=spi_size, max_size=spi_size))
    notify_type = draw(st.sampled_from(list(NotifyType)) | u16)
    return NotifyPayload(notify_type, protocol, spi, draw(small_bytes))


@st.composite
def selectors(draw) -> TrafficSelector:
    version = draw(st.sampled_from([4, 6]))
    a, b = sorted([draw(st.ip_addresses(v=version)), draw(st.ip_addresses(v=version))])
    ts_type = TsType.TS_IPV4_ADDR_RANGE if version == 4 else TsType.TS_IPV6_ADDR_RANGE
    return TrafficSelector(ts_type, draw(u8), draw(u16), draw(u16), a.packed, b.packed)


@st.composite
def delete_payloads(draw) -> DeletePayload:
    protocol = draw(st.sampled_from([1, 2, 3, 200]))
    size = {1: 0, 2: 4, 3: 4}[protocol] if protocol in (1, 2, 3) else draw(st.integers(0, 8))
    spis = draw(st.lists(st.binary(min_size=size, max_size=size), max_size=0 if protocol == 1 else 4))
    return DeletePayload(protocol, size, spis)


@st.composite
def fragment_payloads(draw) -> EncryptedFragmentPayload:
    total = draw(st.integers(1, 5))
    number = draw(st.integers(1, total))
    first_inner = draw(u8) if number == 1 else 0
    return EncryptedFragmentPayload(first_inner, number, total, draw(small_bytes))


unencrypted_payloads = st.one_of(
    sa_payloads(),
    st.builds(KePayload, group=u16, data=small_bytes),
    st.builds(NoncePayload, data=st.binary(min_size=16, max_size=256)),
    notify_payloads(),
    st.builds(IdPayload, initiator=st.booleans(), id_type=u8, data=small_bytes),
    st.builds(AuthPayload, method=u8, data=small_bytes),
    st.builds(CertPayload, encoding=u8, data=small_bytes),
    st.builds(CertReqPayload, encoding=u8, data=small_bytes),
    st.builds(TsPayload, initiator=st.booleans(), selectors=st.lists(selectors(), max_size=3)),
    delete_payloads(),
    st.builds(VendorPayload, data=small_bytes),
    st.builds(
        ConfigPayload, cfg_type=u8, attributes=st.lists(st.tuples(st.integers(0, 0x7FFF), small_bytes), max_size=3)
    ),
    st.builds(EapPayload, message=st.binary(min_size=4, max_size=40)),
    st.builds(UnknownPayload, payload_type=u8.filter(lambda t: t not in KNOWN_TYPES), body=small_bytes),
)


@st.composite
def payloads(draw, encrypted_last: bool = True) -> list:
    chain = draw(st.lists(unencrypted_payloads, max_size=6))
    for payload in chain:
        if not isinstance(payload, UnknownPayload):  # unknown critical payloads are rejected, by design
            payload.critical = draw(st.booleans())
    if encrypted_last and draw(st.booleans()):
        chain.append(draw(st.builds(EncryptedPayload, first_inner=u8, body=small_bytes) | fragment_payloads()))
    return chain


headers = st.builds(
    Header,
    spi_i=st.binary(min_size=8, max_size=8),
    spi_r=st.binary(min_size=8, max_size=8),
    next_payload=st.just(0),
    exchange=st.sampled_from(list(ExchangeType)) | u8,
    flags=u8,
    message_id=u32,
    minor=st.integers(0, 15),
)
messages = st.builds(Message, header=headers, payloads=payloads())


# --- span checks shared with the other test modules ---


def check_spans(tree: Field, data: bytes, base: int = 0) -> None:
    """Spans nest, siblings do not overlap, leaves tile the buffer and hold the bytes they claim."""
    assert (tree.start, tree.end) == (base, base + len(data))
    for node in tree.walk():
        assert base <= node.start <= node.end <= base + len(data)
        for child in node.children:
            assert node.start <= child.start <= child.end <= node.end, (node.name, child.name)
        for left, right in zip(node.children, node.children[1:]):
            assert left.end <= right.start, (left.name, right.name)
        raw = data[node.start - base : node.end - base]
        if not node.children and isinstance(node.value, bytes):
            assert raw == node.value, node.name
        elif not node.children and isinstance(node.value, int):
            assert int.from_bytes(raw, "big") == node.value, node.name
    leaves = [node for node in tree.walk() if not node.children and node is not tree]
    assert leaves[0].start == base and leaves[-1].end == base + len(data)
    for left, right in zip(leaves, leaves[1:]):
        assert left.end == right.start, f"gap or overlap between {left.name} and {right.name}"
    json.dumps(tree.to_dict())


# --- tests ---


@settings(max_examples=150, deadline=None)
@given(messages)
def test_message_round_trip(msg: Message) -> None:
    data = encode_message(msg)
    assert msg.header.length == len(data)
    decoded = decode_message(data)
    assert decoded.message == msg
    assert encode_message(decoded.message) == data
    check_spans(decoded.tree, data)
    assert [c.name for c in decoded.tree.children][0] == "Header"
    assert len(decoded.tree.children) == 1 + len(msg.payloads)


@settings(max_examples=75, deadline=None)
@given(payloads(encrypted_last=False), st.integers(0, 1000), st.booleans())
def test_payload_chain_round_trip(chain: list, base: int, sender_is_initiator: bool) -> None:
    first, data = encode_payloads(chain)
    decoded, fields = decode_payloads(data, first, base, sender_is_initiator=sender_is_initiator)
    assert decoded == chain
    if chain:
        check_spans(Field("chain", base, base + len(data), children=fields), data, base)


def test_encoding_is_what_rfc_7296_draws() -> None:
    msg = Message(
        Header(bytes(range(8)), bytes(8), 0, ExchangeType.IKE_SA_INIT, HeaderFlags.INITIATOR, 0),
        [KePayload(DhId.MODP_768, b"\xaa" * 3), NoncePayload(b"\x11" * 16)],
    )
    data = encode_message(msg)
    assert data.hex() == (
        "0001020304050607"
        "0000000000000000"
        "22"
        "20"
        "22"
        "08"
        "00000000"
        "0000003b"
        "28"
        "00"
        "000b"
        "0001"
        "0000"
        "aaaaaa"  # KE: next = Nonce (40), length 11, group 1
        "00"
        "00"
        "0014" + "11" * 16  # Nonce: last payload
    )
    assert (msg.header.next_payload, msg.header.length) == (PayloadType.KE, 59)


def test_sk_payload_chains_into_its_contents() -> None:
    first, inner = encode_payloads([IdPayload(True, IdType.ID_FQDN, b"a.example"), AuthPayload(2, b"m" * 32)])
    assert first == PayloadType.IDi
    msg = Message(
        Header(b"i" * 8, b"r" * 8, 0, ExchangeType.IKE_AUTH, HeaderFlags.INITIATOR, 1),
        [EncryptedPayload(first, b"opaque")],
    )
    data = encode_message(msg)
    assert data[16] == PayloadType.SK and data[28] == PayloadType.IDi  # SK's Next Payload = first inner
    decoded = decode_message(data)
    assert decoded.message.payloads == [EncryptedPayload(PayloadType.IDi, b"opaque")]
    assert decoded.tree.find("Encrypted Data").value == b"opaque"


def test_sk_must_be_last_when_encoding() -> None:
    try:
        encode_payloads([EncryptedPayload(0, b""), NoncePayload(b"n" * 16)])
    except ValueError as e:
        assert "last" in str(e)
    else:
        raise AssertionError("SK before another payload was encoded")


def test_summary_uses_rfc_names() -> None:
    header = Header(b"i" * 8, bytes(8), 0, ExchangeType.IKE_SA_INIT, HeaderFlags.INITIATOR, 0)
    msg = Message(
        header,
        [
            SaPayload([Proposal(1, ProtocolId.IKE, b"", [Transform(TransformType.ENCR, EncrId.ENCR_AES_CBC, 128)])]),
            KePayload(14, b"k"),
            NoncePayload(b"n" * 16),
            NotifyPayload(NotifyType.NAT_DETECTION_SOURCE_IP),
            NotifyPayload(40969),
            ConfigPayload(CfgType.CFG_REQUEST, []),
            DeletePayload(1, 0, []),
        ],
    )
    assert msg.summary() == "HDR, SA, KE, Ni, N(NAT_DETECTION_SOURCE_IP), N(UNKNOWN(40969)), CP(CFG_REQUEST), D"
    header.flags = HeaderFlags.RESPONSE  # the responder's nonce is Nr, whoever sends the request
    assert Message(header, [NoncePayload(b"n" * 16)]).summary() == "HDR, Nr"
    auth = Message(header, [EncryptedPayload(PayloadType.IDr, b"")])
    inner = [IdPayload(False, 2, b"b"), AuthPayload(2, b""), TsPayload(True, []), TsPayload(False, [])]
    assert auth.summary() == "HDR, SK"
    assert auth.summary(inner) == "HDR, SK {IDr, AUTH, TSi, TSr}"
    frag = Message(header, [EncryptedFragmentPayload(0, 2, 3, b"")])
    assert frag.summary() == "HDR, SKF(2/3)"


def test_message_lookups() -> None:
    n1, n2 = NotifyPayload(NotifyType.COOKIE, data=b"c"), NotifyPayload(NotifyType.INITIAL_CONTACT)
    msg = Message(Header(b"i" * 8, bytes(8), 0, 34, 8, 0), [n1, KePayload(14, b""), n2])
    assert msg.find(KePayload) == KePayload(14, b"")
    assert msg.find(NoncePayload) is None
    assert msg.find_all(NotifyPayload) == msg.notifies() == [n1, n2]


def test_id_body_is_what_auth_macs() -> None:
    payload = IdPayload(True, IdType.ID_FQDN, b"a.example")
    assert payload.id_body() == b"\x02\x00\x00\x00a.example"
    _, chain = encode_payloads([payload])
    assert chain[4:] == payload.id_body()  # the octets after the generic header


def test_traffic_selector_helpers() -> None:
    net = TrafficSelector.from_network("198.51.100.0/24")
    assert (net.start_address, net.end_address) == (bytes([198, 51, 100, 0]), bytes([198, 51, 100, 255]))
    assert (net.ts_type, net.start_port, net.end_port) == (TsType.TS_IPV4_ADDR_RANGE, 0, 65535)
    assert str(net) == "198.51.100.0/24"
    assert str(TrafficSelector.from_network("203.0.113.1/32")) == "203.0.113.1/32"
    icmp = TrafficSelector.from_range("198.51.100.1", "198.51.100.9", protocol=1)
    assert str(icmp) == "198.51.100.1-198.51.100.9 proto 1 ports 0-65535"
    v6 = TrafficSelector.from_network("2001:db8::/64", ports=(443, 443))
    assert v6.ts_type == TsType.TS_IPV6_ADDR_RANGE and len(v6.encode()) == 40
    assert str(v6) == "2001:db8::/64 ports 443-443"


def test_field_helpers() -> None:
    leaf = Field("SPIi", 0, 8, b"\x01" * 8, "0101010101010101")
    kind = Field("Exchange Type", 18, 19, ExchangeType.IKE_AUTH, "IKE_AUTH")
    root = Field("IKEv2 message", 0, 28, children=[Field("Header", 0, 28, children=[leaf, kind])])
    assert [f.name for f in root.walk()] == ["IKEv2 message", "Header", "SPIi", "Exchange Type"]
    assert root.find("SPIi") is leaf and root.find("IKEv2 message") is None
    as_dict = root.to_dict()
    assert as_dict["children"][0]["children"][0]["value"] == "01" * 8
    assert (
        as_dict["children"][0]["children"][1]["value"] == 35
        and type(as_dict["children"][0]["children"][1]["value"]) is int
    )


def test_name_of() -> None:
    assert name_of(EncrId, 12) == "ENCR_AES_CBC"
    assert name_of(EncrId, 99) == "UNKNOWN(99)"
    assert name_of(PrfId, 5) == "PRF_HMAC_SHA2_256" and name_of(IntegId, 12) == "AUTH_HMAC_SHA2_256_128"
