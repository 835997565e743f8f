"""The TUI driven by Textual's Pilot: what each panel shows as lesson 1 is stepped (memory transport)."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import io

from conftest import lesson_with, needs_lab
from rich.console import Console

from ikelab.lab.session import Session
from ikelab.lab.transports import MemoryTransport
from ikelab.lessons import list_lessons, load_lesson
from ikelab.trace import AuthEvent, CertificateEvent, DhSharedEvent, IkeKeysEvent, Ikev1HashEvent, Ikev1IvEvent, MessageEvent, PrfPlusEvent
from ikelab.tui import run_app
from ikelab.tui.app import IkelabApp
from ikelab.tui.focus import arrow_states, wire_messages
from ikelab.tui.hexview import HexView, _hex_column, byte_at, bytes_per_row, render_hex
from ikelab.tui.ladder import Ladder
from ikelab.tui.lesson_screen import LessonScreen
from ikelab.tui.message_view import DATAGRAM, PLAINTEXT, MessageView
from ikelab.tui.panels.auth import AuthPanel
from ikelab.tui.panels.dh import DhPanel
from ikelab.tui.panels.keys import KeysPanel
from ikelab.tui.panels.lesson_text import LessonText
from ikelab.tui.panels.ping import PingPanel
from ikelab.tui.panels.sas import SaPanel
from ikelab.tui.runner import TransportChoice

SIZE = (120, 40)
MEMORY = TransportChoice("memory")


def pilot_test(test):
    """Run an async test on its own event loop (the suite has no async pytest plugin)."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        asyncio.run(test(*args, **kwargs))

    return run


def make_app(lesson=None, transport: TransportChoice = MEMORY, seed: int | None = 1) -> IkelabApp:
    return IkelabApp(lesson or load_lesson("ikev2-psk"), seed, transport)


async def settle(pilot) -> None:
    """Wait until the lesson screen has no job running or queued."""
    await pilot.pause()
    while isinstance(pilot.app.screen, LessonScreen) and pilot.app.screen.busy:
        await pilot.pause(0.01)
    await pilot.pause()


async def press(pilot, *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
    await settle(pilot)


def text_of(panel) -> str:
    """A panel's content as plain text, wide enough that no hex value folds."""
    console = Console(width=1400, record=True, file=io.StringIO())
    console.print(panel.body.content)
    return console.export_text()


TAB_KEYS = {LessonText: "1", DhPanel: "3", KeysPanel: "4", AuthPanel: "5", SaPanel: "6", PingPanel: "7"}


async def shown(pilot, panel_type) -> str:
    """Open the panel's tab (tabs are drawn when shown) and return its text."""
    await press(pilot, TAB_KEYS[panel_type])
    return text_of(pilot.app.screen.query_one(panel_type))


def events(app) -> list:
    return app.screen.runner.session.trace.events


@pilot_test
async def test_stepping_lesson_1_to_the_end_fills_every_panel():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "not started" in app.screen.sub_title
        await press(pilot, "n", "space", "n", "n", "n")
        screen = app.screen
        assert screen.runner.finished and len(screen.runner.steps) == 5

        ladder = screen.query_one(Ladder)
        assert len(ladder.messages) == 4
        labels = [a.prompt.label for a in ladder.query_one("#arrows").options]
        assert labels[0].startswith("IKE_SA_INIT req  HDR, SA, KE, Ni, N(NAT_DETECTION_SOURCE_IP)")
        assert labels[1].startswith("IKE_SA_INIT resp  HDR, SA, KE, Nr")
        assert labels[2] == "IKE_AUTH req  HDR, SK {IDi, IDr, AUTH, SA, TSi, TSr}"
        assert labels[3] == "IKE_AUTH resp  HDR, SK {IDr, AUTH, SA, TSi, TSr}"

        dh = await shown(pilot, DhPanel)
        shared = [e.shared for e in events(app) if isinstance(e, DhSharedEvent)]
        assert len(shared) == 2 and shared[0] == shared[1]
        assert dh.count(shared[0].hex()) == 2
        assert "both sides computed the same" in dh

        keys_text = await shown(pilot, KeysPanel)
        ike_keys = next(e for e in events(app) if isinstance(e, IkeKeysEvent))
        assert f"SK_ei  {len(ike_keys.keys['SK_ei'])} bytes" in keys_text
        assert ike_keys.keys["SK_ei"].hex() in keys_text
        assert "SKEYSEED = prf(Ni | Nr, g^ir)" in keys_text and "T1 = prf(K, S | 0x01)" in keys_text
        assert "DIFFERENT" not in keys_text

        sas = await shown(pilot, SaPanel)
        assert sas.count("ESTABLISHED") == 2 and "Child SA 'net'" in sas

        lesson_text = await shown(pilot, LessonText)
        assert "Step 5: left received IKE_AUTH response" in lesson_text
        assert "Right checked left's AUTH" in lesson_text  # the lesson's narrative for this message
        assert "Checkpoints" in lesson_text

        assert "No ping stage: the memory transport has no datapath" in await shown(pilot, PingPanel)
        assert "established on both sides" in str(screen.query_one("#status").content)


@pilot_test
async def test_selecting_a_field_highlights_its_bytes_and_clicking_a_byte_selects_its_field():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "n", "n", "n", "2")
        view = app.screen.query_one(MessageView)
        hexview = view.query_one(HexView)
        message = view.message
        assert message.exchange == "IKE_AUTH" and not message.is_response  # the step's message in flight

        nonce = next(n for n in view.nodes[DATAGRAM] if n.data.field.name == "SPIr")
        view.tree.move_cursor(nonce)
        await pilot.pause()
        assert hexview.data == message.data and hexview.highlight == (8, 16)

        identity = next(n for n in view.nodes[PLAINTEXT] if n.data.field.name == "Identification Data")
        identity.parent.expand()
        await pilot.pause()
        view.tree.move_cursor(identity)
        await pilot.pause()
        f = identity.data.field
        assert hexview.data == message.plaintext and hexview.highlight == (f.start, f.end)
        assert message.plaintext[f.start : f.end] == b"left.example"

        # Click the first byte of the SK contents' first row: the deepest field there is IDi's Next Payload.
        per_row = bytes_per_row(hexview.scrollable_content_region.width)
        hexview.scroll_to(y=0, animate=False)
        await pilot.pause()
        await pilot.click(hexview.query_one("Static"), offset=(_hex_column(1, per_row), 0))
        await pilot.pause()
        await pilot.pause()
        assert view.tree.cursor_node.data.field.name == "Critical"
        assert hexview.highlight == (1, 2)


@pilot_test
async def test_b_goes_back_one_step_by_replaying_the_seed():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "n", "n")
        before = [e.data for e in events(app) if isinstance(e, MessageEvent)]
        await press(pilot, "n", "b")
        assert len(app.screen.runner.steps) == 2
        assert len(app.screen.query_one(Ladder).messages) == 2
        assert [e.data for e in events(app) if isinstance(e, MessageEvent)] == before  # the same bytes again
        await press(pilot, "n")
        assert len(app.screen.runner.steps) == 3
        await press(pilot, "r")
        assert app.screen.runner.steps == [] and "not started" in app.screen.sub_title
        await press(pilot, "c")
        assert app.screen.runner.finished


@pilot_test
async def test_a_wrong_psk_shows_authentication_failed_and_the_differing_auth_input():
    app = make_app(lesson_with(right={"psk": b"not the same key"}))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "c")
        screen = app.screen
        last = screen.query_one(Ladder).messages[-1]
        assert "N(AUTHENTICATION_FAILED)" in last.summary
        status = str(screen.query_one("#status").content)
        assert "IKE SA failed" in status and "AUTHENTICATION_FAILED" in status
        auth = await shown(pilot, AuthPanel)
        assert "verified: MISMATCH" in auth
        key_pad = next(line for line in auth.splitlines() if line.startswith('prf(PSK, "Key Pad for IKEv2")'))
        assert "✗ differs" in key_pad
        nonce = next(line for line in auth.splitlines() if line.startswith("nonce"))
        assert "✓" in nonce
        assert any(not e.ok for e in events(app) if isinstance(e, AuthEvent) and e.action == "verified")


@pilot_test
async def test_the_picker_lists_the_lessons_and_opens_one():
    lessons = list_lessons()
    app = IkelabApp(None, 1, TransportChoice("memory"), lessons)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.screen.query_one("#lessons").option_count == len(lessons)
        manual = next(i for i, lesson in enumerate(lessons) if lesson.manual)
        app.screen.query_one("#lessons").highlighted = manual
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, LessonScreen)
        await press(pilot, "n")
        assert "manual" in await shown(pilot, SaPanel)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, LessonScreen)


@pilot_test
async def test_export_writes_the_capture_and_tables(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "c", "e")
    assert (tmp_path / "ikelab-ikev2-psk.pcapng").stat().st_size > 0
    assert (tmp_path / "ikelab-ikev2-psk.wireshark" / "ikev2_decryption_table").is_file()


@pilot_test
async def test_without_the_lab_a_banner_says_why_and_there_is_no_ping_stage():
    app = make_app(transport=TransportChoice("loopback", "the lab needs root"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        banner = str(app.screen.query_one("#banner").content)
        assert "the lab needs root" in banner and "no ping stage" in banner
        await press(pilot, "c")
        assert app.screen.runner.finished
        assert "No ping stage" in await shown(pilot, PingPanel)


@pilot_test
async def test_a_run_without_seed_gets_a_random_one_it_can_replay():
    app = make_app(seed=None)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "(random)" in app.screen.sub_title
        await press(pilot, "n", "n")
        first = next(e.data for e in events(app) if isinstance(e, MessageEvent))
        await press(pilot, "b", "n")
        assert next(e.data for e in events(app) if isinstance(e, MessageEvent)) == first


def test_run_app_reports_an_unknown_lesson(capsys):
    assert run_app("no-such-lesson", 1, "memory") == 2
    assert "no lesson with this slug" in capsys.readouterr().err


def test_hex_layout_maps_columns_back_to_bytes():
    data = bytes(range(40))
    for per_row in (8, 16):
        for offset in (0, 7, 8, 15, 39):
            row, j = divmod(offset, per_row)
            assert byte_at(_hex_column(j, per_row) + 1, row, per_row, len(data)) == offset
        assert byte_at(2, 0, per_row, len(data)) is None  # the offset column
    text = render_hex(data, (9, 11), 16)
    assert text.plain.splitlines()[0].startswith("0000  00 01 02")
    highlighted = [text.plain[s.start : s.end] for s in text.spans if "yellow" in str(s.style)]
    assert highlighted[:2] == ["09", "0a"]


@needs_lab()
@pilot_test
async def test_the_lab_pings_through_the_tunnel_and_leaves_no_namespace():
    from ikelab.lab.netns import ikelab_namespaces

    app = make_app(transport=TransportChoice("netns"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        runner = app.screen.runner
        namespaces = set(runner.lab.namespaces.values())
        assert namespaces <= set(ikelab_namespaces())
        await press(pilot, "c", "p")
        ping = text_of(app.screen.query_one(PingPanel))  # p opens the ping tab
        assert "5 of 5 replies through the tunnel" in ping and "5 packets" in ping
        assert "5 packets" in await shown(pilot, SaPanel)
    assert not namespaces & set(ikelab_namespaces())  # the app removed them as it ended


def test_the_ladder_tells_lost_and_in_flight_datagrams_from_delivered_ones():
    class LosesTheFirst(MemoryTransport):
        def __init__(self, addresses) -> None:
            super().__init__(addresses)
            self.lost = False

        def carry(self, send):
            if not self.lost:
                self.lost = True
                return None
            return super().carry(send)

    lesson = load_lesson("ikev2-psk")
    session = Session(lesson, LosesTheFirst({p.name: p.address for p in lesson.peers}), seed=1)
    session.step()
    assert arrow_states(session.trace.events, session.steps) == ["in flight"]
    session.run()
    messages = wire_messages(session.trace.events)
    states = arrow_states(session.trace.events, session.steps)
    assert states[0] == "lost" and messages[1].direction == "retransmitted"
    assert states[1:] == ["delivered"] * (len(messages) - 1)


@pilot_test
async def test_an_undecodable_message_points_at_the_bad_byte():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "2")
        view = app.screen.query_one(MessageView)
        garbage = MessageEvent("left", 0.0, direction="sent", ike_version=2, exchange="IKE_SA_INIT", message_id=0,
                               is_response=False, summary="HDR", src="192.0.2.1:500", dst="192.0.2.2:500", data=bytes(12))
        view.show(garbage)
        await pilot.pause()
        assert "cannot be decoded" in str(view.tree.root.label)
        assert view.query_one(HexView).highlight is not None


@pilot_test
async def test_the_steps_are_in_the_command_palette_and_help_opens():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert {"Next step", "Back one step", "Export the capture"} <= set(titles)
        await pilot.press("question_mark")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, LessonScreen)


@pilot_test
async def test_a_failing_job_is_reported_and_the_screen_keeps_working(monkeypatch):
    from ikelab.lab.netns import LabError
    from ikelab.tui.runner import Runner

    def broken(self):
        raise LabError("ip netns add failed: no room")

    monkeypatch.setattr(Runner, "_open", broken)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "the lab failed: ip netns add failed: no room" in str(app.screen.query_one("#status").content)
        await press(pilot, "n")  # nothing to step, and nothing breaks
        assert app.screen.runner.steps == []


@pilot_test
async def test_an_ikev1_step_shows_the_lesson_text_of_its_message():
    # IKEv1 messages are named by number ("Main Mode message 5"), not request and response.
    app = make_app(load_lesson("ikev1-main-psk"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "n", "n", "n", "n", "n")
        text = await shown(pilot, LessonText)
        assert "Step 5: left received Main Mode message 4" in text
        assert "HDR* means encrypted. Left sends its identity" in text


def ikev1_lesson(slug: str = "ikev1-main-psk", right_psk: bytes | None = None):
    lesson = load_lesson(slug)
    if right_psk is not None:
        lesson = dataclasses.replace(lesson, right=dataclasses.replace(lesson.right, psk=right_psk))
    return lesson


def row(text: str, name: str) -> str:
    """The panel line whose first column is `name`."""
    return next(line for line in text.splitlines() if line.split("  ")[0] == name)


@pilot_test
async def test_the_ikev1_auth_tab_shows_hash_i_as_both_sides_computed_it():
    app = make_app(ikev1_lesson())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "n", "n", "n", "n", "n")  # left has sent main mode message 5; right has not read it
        auth = await shown(pilot, AuthPanel)
        hash_i = next(e for e in events(app) if isinstance(e, Ikev1HashEvent) and e.label == "HASH_I")
        assert hash_i.peer == "left" and hash_i.action == "computed"
        assert "HASH_I  in Main Mode message 5, left → right" in auth and "right has not checked it yet" in auth
        assert hash_i.output.hex() in row(auth, "= HASH_I") and hash_i.parts["IDii_b"].hex() in row(auth, "IDii_b")

        await press(pilot, "n")  # right reads message 5 and checks HASH_I
        auth = await shown(pilot, AuthPanel)
        verified = next(e for e in events(app) if isinstance(e, Ikev1HashEvent) and e.label == "HASH_I" and e.action == "verified")
        assert verified.peer == "right" and verified.ok
        assert "right verified it: OK" in auth
        line = row(auth, "= HASH_I")
        assert line.count(hash_i.output.hex()) == 2 and line.rstrip().endswith("✓")  # left's value beside right's
        assert row(auth, "SKEYID").count(hash_i.key.hex()) == 2
        assert "HASH_R  in Main Mode message 6, right → left" in auth

        await press(pilot, "c")
        auth = await shown(pilot, AuthPanel)
        hash_3 = next(e for e in events(app) if isinstance(e, Ikev1HashEvent) and e.label == "HASH(3)" and e.action == "verified")
        assert hash_3.output.hex() in row(auth, "= HASH(3)") and "✗" not in auth

        keys = await shown(pilot, KeysPanel)
        assert "ISAKMP SA" in keys and "K2 = prf(K, K1 | S)" in keys and "T1 = prf(K, S | 0x01)" not in keys
        iv = next(e for e in events(app) if isinstance(e, Ikev1IvEvent) and e.label == "IV of Main Mode message 6")
        assert iv.output.hex() in row(keys, "Main Mode message 6")
        assert "verifies the peer's HASH(3): OK (AUTH tab)" in await shown(pilot, LessonText)


@pilot_test
async def test_a_wrong_psk_in_ikev1_main_mode_shows_why_message_5_cannot_be_read():
    app = make_app(ikev1_lesson(right_psk=b"not the same key"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "c")
        assert "IKE SA failed" in str(app.screen.query_one("#status").content)
        auth = await shown(pilot, AuthPanel)
        assert "✗ right never checked HASH_I: main mode message 5 does not decrypt" in auth
        assert not any(isinstance(e, Ikev1HashEvent) and e.peer == "right" for e in events(app))
        ka = {e.peer: e.split["Ka"] for e in events(app) if isinstance(e, PrfPlusEvent) and "Ka" in e.split}
        assert ka["left"] != ka["right"]
        line = row(auth, "Ka")
        assert ka["left"].hex() in line and ka["right"].hex() in line and "✗ differs" in line
        assert row(auth, "pre-shared key").count("✗ differs") == 1
        assert "✓" in row(auth, "IV")  # hashed from the public values only: the same on both sides
        assert "The first value that differs is the pre-shared key" in auth


@pilot_test
async def test_ikev1_certificates_show_the_checks_and_sig_i():
    app = make_app(ikev1_lesson("ikev1-main-certs"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "c")
        auth = await shown(pilot, AuthPanel)
        assert "SIG_I  in Main Mode message 5, left → right  right verified it: OK" in auth
        assert "right checks the initiator's certificate O=ikelab, CN=left.example  valid" in auth
        sig = next(e for e in events(app) if isinstance(e, Ikev1HashEvent) and e.label == "SIG_I" and e.action == "verified")
        signed = row(auth[auth.index("SIG_I  in"):], "HASH_I")  # the HASH_I that SIG_I signs, on both sides
        assert signed.count(sig.parts["HASH_I"].hex()) == 2 and signed.rstrip().endswith("✓")


@pilot_test
async def test_a_wrong_psk_in_ikev1_aggressive_mode_shows_which_hash_r_input_differs():
    app = make_app(ikev1_lesson("ikev1-aggressive-psk", right_psk=b"not the same key"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "c")
        auth = await shown(pilot, AuthPanel)
        assert "left verified it: MISMATCH" in auth and "✗ left refused HASH_R: the inputs differ in SKEYID" in auth
        assert "✗ differs" in row(auth, "SKEYID") and "✓" in row(auth, "IDir_b")


@pilot_test
async def test_the_auth_tab_lists_each_certificate_check():
    app = make_app(load_lesson("ikev2-certs"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "c")
        auth = await shown(pilot, AuthPanel)
        checked = [e for e in events(app) if isinstance(e, CertificateEvent)]
        assert {e.peer for e in checked} == {"left", "right"} and all(e.ok for e in checked)
        for e in checked:
            assert f"{e.peer} checks the {e.of_role}'s certificate {e.subject}  valid" in auth
            assert all(f"✓ {c['name']}" in auth for c in e.checks)
