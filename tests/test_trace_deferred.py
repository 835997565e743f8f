"""Trace fields written when first read (DeferredText, DeferredList): the same values as eager ones."""

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
