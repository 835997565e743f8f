"""Field trees behave as if built eagerly, although the decoder leaves leaves and display text lazy."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest
from scapy.all import UDP, rdpcap

from ikelab.wire.fields import Field
from ikelab.wire.ikev2 import decode_message, decode_payloads
from ikelab.wire.reader import Reader

PCAP = Path(__file__).parent.parent / "pcaps" / "ikev2-psk.pcapng"


def ike_sa_init_request() -> bytes:
    return next(bytes(p[UDP].payload) for p in rdpcap(str(PCAP)) if UDP in p and p[UDP].dport == 500)


def eager_copy(field: Field) -> Field:
    """The same tree built from plain values, as the decoder built it before it was lazy."""
    children = [eager_copy(child) for child in field.children]
    return Field(field.name, field.start, field.end, field.value, field.display, field.note, children)


def test_lazy_tree_equals_an_eager_one_whichever_is_read_first() -> None:
    data = ike_sa_init_request()
    eager = eager_copy(decode_message(data).tree)
    for read in (lambda t: t.to_dict(), lambda t: list(t.walk()), repr, lambda t: t == eager, lambda t: None):
        tree = decode_message(data).tree
        read(tree)
        assert tree == eager
        assert tree.to_dict() == eager.to_dict()
        assert repr(tree) == repr(eager)
    ke = decode_message(data).tree.find("KE payload")
    assert [c.name for c in ke.children] == ["Next Payload", "Critical", "Payload Length", "DH Group Num",
                                             "Reserved", "Key Exchange Data"]
    assert all(type(c) is Field and type(c.display) is str for c in decode_message(data).tree.walk())


def test_trees_survive_pickle_and_copy_before_being_read() -> None:
    data = ike_sa_init_request()
    eager = eager_copy(decode_message(data).tree)
    assert pickle.loads(pickle.dumps(decode_message(data).tree)) == eager
    assert copy.deepcopy(decode_message(data).tree) == eager


def test_payload_chain_spans_count_from_the_base_offset() -> None:
    data = ike_sa_init_request()
    outer = decode_message(data)
    _, fields = decode_payloads(data[28:], outer.message.header.next_payload, 1000)
    shifted = [eager_copy(f) for f in outer.tree.children[1:]]
    for tree in shifted:
        for node in tree.walk():
            node.start, node.end = node.start + 1000 - 28, node.end + 1000 - 28
    assert fields == shifted


def test_display_show_and_note_functions() -> None:
    field = Field("Flags", 19, 20, 0x28, note=lambda v: f"note for {v:#x}", show=lambda v: f"shown {v}")
    assert field.note == "note for 0x28"
    assert field.display == "shown 40"
    field.display = "set"
    assert field.display == "set" and field.to_dict()["display"] == "set"
    later = Field("Group", 0, 4, display="eager")
    later.display_later(lambda v: "computed when read")
    assert later.display == "computed when read"
    assert Field("x", 0, 1, 5, "shown", "note") == Field("x", 0, 1, 5, "shown", "note")
    assert Field("x", 0, 1, 5, "shown") != Field("x", 0, 1, 5, "other")
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        Field("x", 0, 1).nothing  # noqa: B018


def test_reader_last_and_group_records() -> None:
    r = Reader(bytes([1, 0, 2, 0xAB]), context="test payload", base=100)
    group = r.open_group("Group")
    assert r.u8("One", note=lambda v: f"value {v}") == 1
    r.reserved(1)
    assert r.last.note == "Must be zero; ignored on receipt."
    r.last.note += " Amended."
    assert r.u16("Two", show=hex) == 0x2AB
    r.close_group(group)
    assert [(c.name, c.start, c.end, c.value, c.display, c.note) for c in group.children] == [
        ("One", 100, 101, 1, "1", "value 1"),
        ("Reserved", 101, 102, 0, "0", "Must be zero; ignored on receipt. Amended."),
        ("Two", 102, 104, 0x2AB, "0x2ab", ""),
    ]
    assert (group.start, group.end) == (100, 104)
