"""Trace fields written when first read (Deferred, DeferredList): the same values as eager ones."""

from ikelab.trace import CommandEvent, DeferredList, Event, MessageEvent, Trace, to_jsonable


def message(summary) -> MessageEvent:
    return MessageEvent("left", 0.0, direction="sent", ike_version=2, exchange="IKE_AUTH", message_id=1,
                        is_response=False, summary=summary, src="192.0.2.1:500", dst="192.0.2.2:500", data=b"")


def test_a_summary_given_as_a_function_is_written_once_when_first_read():
    calls = []

    def write() -> str:
        calls.append(1)
        return "HDR, SK {IDi, AUTH, SA, TSi, TSr}"

    event = message(write)
    assert calls == []
    assert event.summary == "HDR, SK {IDi, AUTH, SA, TSi, TSr}"
    assert event.summary == "HDR, SK {IDi, AUTH, SA, TSi, TSr}"
    assert calls == [1]


def test_a_deferred_summary_equals_an_eager_one_everywhere_it_is_read():
    eager, deferred = message("HDR, SA, KE, Ni"), message(lambda: "HDR, SA, KE, Ni")
    assert deferred == eager
    assert repr(deferred) == repr(eager)
    assert Event.to_dict(deferred) == Event.to_dict(eager)  # the fields (the trees need real bytes)
    assert Event.to_dict(deferred)["summary"] == "HDR, SA, KE, Ni"


def test_summary_stays_a_required_field():
    try:
        MessageEvent("left", 0.0, direction="sent", ike_version=2, exchange="IKE_AUTH", message_id=1,
                     is_response=False, src="a", dst="b", data=b"")
    except TypeError as e:
        assert "summary" in str(e)
    else:
        raise AssertionError("a MessageEvent without a summary was accepted")


def test_deferred_commands_read_as_the_list_they_make():
    made = []
    commands = DeferredList(lambda: made.append(1) or ["ip xfrm state add src 192.0.2.1", "ip xfrm policy add"])
    event = Trace().emit(CommandEvent("left", 0.0, "install", commands, False))
    assert made == []
    assert list(event.commands) == ["ip xfrm state add src 192.0.2.1", "ip xfrm policy add"]
    assert event.commands == ["ip xfrm state add src 192.0.2.1", "ip xfrm policy add"]
    assert len(event.commands) == 2 and event.commands[1] == "ip xfrm policy add"
    assert to_jsonable(event.commands) == ["ip xfrm state add src 192.0.2.1", "ip xfrm policy add"]
    assert event.to_dict()["commands"] == ["ip xfrm state add src 192.0.2.1", "ip xfrm policy add"]
    assert made == [1]


def test_a_proposal_choice_writes_its_texts_when_read_and_they_equal_eager_ones():
    from ikelab.crypto.names import parse_proposal
    from ikelab.ikev2 import proposals
    from ikelab.trace import ProposalEvent
    from ikelab.wire.ikev2_constants import ProtocolId

    ours = (parse_proposal("aes128-sha256-modp2048", ike=True),)
    offered = proposals.offer((parse_proposal("aes256-sha384-modp3072", ike=True),) + ours, ProtocolId.IKE)
    selection = proposals.select(offered, ours, ProtocolId.IKE)
    event = Trace().emit(proposals.choice_event("right", 0.0, "IKE", offered, ours, selection))
    eager = ProposalEvent(
        "right", 0.0, protocol="IKE", offered=[proposals.describe(p) for p in offered], configured=[ours[0].keywords()],
        chosen=proposals.describe(selection.proposal),
        reasons=[f"{proposals.describe(offered[0])} vs configured {ours[0].keywords()}: no common ENCR: offered "
                 "ENCR_AES_CBC-256, configured aes128",
                 f"{proposals.describe(offered[1])} matches configured {ours[0].keywords()}"],
    )
    eager.seq = event.seq
    assert event.chosen == "#2 IKE: ENCR_AES_CBC-128, PRF_HMAC_SHA2_256, AUTH_HMAC_SHA2_256_128, MODP_2048"
    assert event.to_dict() == eager.to_dict()


def test_a_refused_choice_has_no_chosen_text():
    from ikelab.crypto.names import parse_proposal
    from ikelab.ikev2 import proposals
    from ikelab.wire.ikev2_constants import ProtocolId

    ours = (parse_proposal("aes128-sha256-modp2048", ike=True),)
    offered = proposals.offer((parse_proposal("aes256-sha384-modp3072", ike=True),), ProtocolId.IKE)
    selection = proposals.select(offered, ours, ProtocolId.IKE)
    event = proposals.choice_event("right", 0.0, "IKE", offered, ours, selection)
    assert event.chosen is None and selection.negotiated is None
    assert event.to_dict()["chosen"] is None and len(event.reasons) == 1


def test_a_child_sa_described_when_read_equals_one_described_at_once():
    from ikelab.crypto.cipher import cipher
    from ikelab.crypto.integrity import integrity
    from ikelab.esp.sa import EspSa
    from ikelab.trace import ChildSaEvent

    sa = EspSa(bytes.fromhex("c0ffee01"), "192.0.2.2", "192.0.2.1", cipher(12, 128), integrity(12), bytes(16), bytes(32))
    def event(inbound, outbound):
        return ChildSaEvent("left", 0.0, "installed", "net", "tunnel", "ESP", "aes128-sha256", inbound, outbound,
                            ["198.51.100.0/24"], ["203.0.113.0/24"])
    eager, deferred = event(sa.describe(), sa.describe()), event(sa.describe, sa.describe)
    assert deferred == eager
    assert deferred.to_dict() == eager.to_dict()
    assert deferred.inbound["spi"] == "c0ffee01"
