"""IKEv1 against IKEv2 side by side (lesson ikev1-vs-ikev2): the lesson format, the headless table,
the two ladders driven by Pilot, and the table's figures checked against the traces and, in the lab,
against what tshark reads on the wire."""

from __future__ import annotations

import asyncio
import functools
import io
import os
import subprocess
from pathlib import Path

import pytest
from conftest import needs_lab, needs_tshark
from rich.console import Console

from ikelab.cli import main
from ikelab.lab.compare import profile, side_by_side_rows
from ikelab.lessons import LESSONS_DIR, LessonError, load_lesson
from ikelab.trace import MessageEvent
from ikelab.tui.app import IkelabApp
from ikelab.tui.compare_screen import CompareScreen, CompareTable, CompareText, SideLadder
from ikelab.tui.message_view import MessageView
from ikelab.tui.runner import TransportChoice

SLUG = "ikev1-vs-ikev2"
LESSON = (LESSONS_DIR / f"{SLUG}.toml").read_text()
MEMORY = TransportChoice("memory")


def pilot_test(test):
    @functools.wraps(test)
    def run(*args, **kwargs):
        asyncio.run(test(*args, **kwargs))

    return run


async def press(pilot, *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
    await pilot.pause()
    while isinstance(pilot.app.screen, CompareScreen) and pilot.app.screen.busy:
        await pilot.pause(0.01)
    await pilot.pause()


def text_of(panel) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(panel.body.content)
    return console.export_text()


def sent(runner) -> list[MessageEvent]:
    return [e for e in runner.session.trace.events if isinstance(e, MessageEvent) and e.direction == "sent"]


def table_rows(text: str) -> dict[str, str]:
    """The table's rows by label, as the panel shows them (one line each at this width)."""
    labels = [row[0] for row in side_by_side_rows([])[1:]]
    return {label: line.split(label, 1)[1] for line in text.splitlines() for label in labels if line.strip().startswith(label)}


# ---------------------------------------------------------------------- the lesson format


def test_the_lesson_names_two_protocols_and_yields_one_lesson_each():
    lesson = load_lesson(SLUG)
    assert lesson.compare == ("ikev1-main", "ikev2")
    ikev1, ikev2 = lesson.variants()
    assert (ikev1.ike_version, ikev1.mode, ikev2.ike_version) == (1, "main", 2)
    # The same peers, proposals and networks on both sides of the comparison.
    assert ikev1.left == ikev2.left == lesson.left and ikev1.right == ikev2.right == lesson.right
    assert ikev1.narrative("Main Mode message 5") and ikev2.narrative("IKE_AUTH request")


@pytest.mark.parametrize("old,new,key,words", [
    ('compare = ["ikev1-main", "ikev2"]', 'compare = ["ikev1-main", "ikev3"]', "compare", "unknown protocol 'ikev3'"),
    ('compare = ["ikev1-main", "ikev2"]', 'compare = ["ikev2", "ikev2"]', "compare", "two different protocols"),
    ('compare = ["ikev1-main", "ikev2"]', 'compare = "ikev2"', "compare", "must name two protocols"),
    ('compare = ["ikev1-main", "ikev2"]', 'compare = ["ikev1-main", "ikev2"]\nike_version = 1', "ike_version", "from `compare` alone"),
])
def test_a_bad_compare_is_one_line_with_file_line_and_key(tmp_path, old, new, key, words):
    path = tmp_path / "broken.toml"
    path.write_text(LESSON.replace(old, new, 1))
    with pytest.raises(LessonError) as info:
        load_lesson(path)
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"{path}:") and f": {key}: " in text and words in text
    line = next(i for i, line in enumerate(path.read_text().splitlines(), start=1) if line.startswith(f"{key} ="))
    assert info.value.line == line
    assert main(["lessons", "check", str(path)]) == 2


def test_lessons_check_accepts_the_shipped_lesson(capsys):
    assert main(["lessons", "check", str(LESSONS_DIR / f"{SLUG}.toml")]) == 0
    assert "ok (IKEv1 against IKEv2, side by side)" in capsys.readouterr().out


def test_aggressive_mode_shows_its_identities_in_the_clear():
    import dataclasses

    from ikelab.lab.compare import run_variant

    lesson = dataclasses.replace(load_lesson(SLUG), compare=("ikev1-aggressive", "ikev2"))
    sessions = [run_variant(v, "memory", 1) for v in lesson.variants()]
    aggressive, ikev2 = (profile(s.lesson, s.trace.events) for s in sessions)
    assert aggressive.messages == 6 and aggressive.identities == ((1, False), (2, False))
    assert (aggressive.ike_sa_after, aggressive.child_sa_after) == (3, 6)
    assert ikev2.identities == ((3, True), (4, True)) and (ikev2.ike_sa_after, ikev2.child_sa_after) == (4, 4)
    rows = {row[0]: row[1:] for row in side_by_side_rows([aggressive, ikev2])}
    assert rows["identities sent in"] == ("messages 1, 2: in the clear", "messages 3, 4: encrypted")


# ---------------------------------------------------------------------- headless


def test_headless_prints_both_runs_and_the_table(capsys):
    assert main(["run", SLUG, "--headless", "--transport", "memory", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("  ")[0]: line.split() for line in out.splitlines()}
    assert rows["messages on the wire"][-2:] == ["9", "4"]  # RFC 2409: 6 + 3; RFC 7296: 4
    assert rows["round trips"][-2:] == ["4.5", "2"]
    assert "IKE_AUTH request" in out and "Quick Mode message 3" in out
    assert out.count("IKE SA established, 1 Child SA(s) installed") == 2  # IKEv2's words
    assert out.count("ISAKMP SA established, 1 IPsec SA pair(s) installed") == 2  # IKEv1's (RFC 2409)


def test_headless_refuses_what_a_comparison_has_no_use_for(capsys):
    assert main(["run", SLUG, "--headless", "--transport", "memory", "--json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--json, --pcap and --ping" in err


# ---------------------------------------------------------------------- the screen


@pilot_test
async def test_n_steps_both_runs_and_the_table_counts_the_traces():
    app = IkelabApp(load_lesson(SLUG), 1, MEMORY)
    async with app.run_test(size=(160, 50)) as pilot:
        await press(pilot)
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        ikev1, ikev2 = screen.runners
        await press(pilot, "n", "n", "n", "n")
        # Lockstep: both runs have put four messages on the wire.
        assert [len(r.steps) for r in screen.runners] == [4, 4]
        assert [len(screen.query_one(f"#ladder-{i}", SideLadder).messages) for i in (0, 1)] == [4, 4]
        await press(pilot, "n")
        assert ikev2.finished and not ikev1.finished and len(ikev1.steps) == 5
        labels = [o.prompt.label for o in screen.query_one("#ladder-0 #arrows").options]
        assert labels[4].startswith("5 Main Mode 5  HDR*, IDii, HASH_I")
        assert "✓ Child SA after 4 messages" in str(screen.query_one("#status").content)

        # The lesson's words for each column's message, side by side.
        lesson_text = text_of(screen.query_one(CompareText))
        assert "IKEv1 · step 5" in lesson_text and "IKEv2 · step 5" in lesson_text
        # Each column starts with the first words of its message's step text.
        assert "The identity IDii and the proof HASH_I" in lesson_text and "Right proves itself and accepts" in lesson_text

        await press(pilot, "2")
        mid = table_rows(text_of(screen.query_one(CompareTable)))
        assert mid["messages on the wire"].split() == ["5", "4"]
        assert mid["Child SA on both sides"].rstrip().split("  ")[-1].strip() == "after message 4 (IKE_AUTH response)"
        assert mid["Child SA on both sides"].strip().startswith("not yet")

        await press(pilot, "c")
        assert ikev1.finished and ikev2.finished
        rows = table_rows(text_of(screen.query_one(CompareTable)))
        # Every figure against the traces, counted here independently of ikelab.lab.compare.
        v1, v2 = sent(ikev1), sent(ikev2)
        assert rows["messages on the wire"].split() == [str(len(v1)), str(len(v2))] == ["9", "4"]
        assert rows["bytes (UDP payloads)"].split() == [str(sum(len(m.data) for m in v1)), str(sum(len(m.data) for m in v2))]
        encrypted = [[n for n, m in enumerate(v, start=1) if m.plaintext is not None] for v in (v1, v2)]
        assert encrypted == [[5, 6, 7, 8, 9], [3, 4]]
        assert "5-9 (5 of 9)" in rows["sent encrypted"] and "3, 4 (2 of 4)" in rows["sent encrypted"]
        assert rows["identities sent in"].split().count("encrypted") == 2 and "clear" not in rows["identities sent in"]
        assert "after message 6 (Main Mode message 6)" in rows["IKE SA up on both sides"]
        assert "after message 9 (Quick Mode message 3)" in rows["Child SA on both sides"]
        assert "after message 4 (IKE_AUTH response)" in rows["Child SA on both sides"]


@pilot_test
async def test_brackets_step_one_run_and_back_takes_back_the_one_ahead():
    app = IkelabApp(load_lesson(SLUG), 1, MEMORY)
    async with app.run_test(size=(80, 24)) as pilot:
        await press(pilot)
        screen = app.screen
        counts = lambda: [len(r.steps) for r in screen.runners]  # noqa: E731
        await press(pilot, "right_square_bracket", "right_square_bracket")
        assert counts() == [0, 2]
        assert "IKEv1 step 0 · IKEv2 step 2" in screen.sub_title
        await press(pilot, "left_square_bracket")
        assert counts() == [1, 2]
        await press(pilot, "b")
        assert counts() == [1, 1]
        await press(pilot, "b")
        assert counts() == [0, 0]
        # A replay is the same run: the same bytes on the wire as before going back.
        await press(pilot, "n")
        first = [m.data for m in sent(screen.runners[1])]
        await press(pilot, "b", "n")
        assert [m.data for m in sent(screen.runners[1])] == first


@pilot_test
async def test_the_message_tab_opens_the_arrow_chosen_in_either_ladder():
    app = IkelabApp(load_lesson(SLUG), 1, MEMORY)
    async with app.run_test(size=(120, 40)) as pilot:
        await press(pilot, "c", "3")
        screen = app.screen
        # After a step the newest message of the run stepped last opens.
        assert screen.query_one(MessageView).message is sent(screen.runners[1])[-1]
        arrows = screen.query_one("#ladder-0 #arrows")
        arrows.focus()
        await pilot.pause()
        arrows.highlighted = 4
        await pilot.pause()
        assert screen.query_one(MessageView).message is sent(screen.runners[0])[4]
        assert "IKEv1 message 5: Main Mode message 5" in str(screen.query_one("#message-head").content)


@pilot_test
async def test_the_picker_opens_the_comparison_and_escape_closes_both_runs():
    from ikelab.tui.picker import LessonPicker

    lessons = [load_lesson("ikev2-psk"), load_lesson(SLUG)]
    app = IkelabApp(None, 1, MEMORY, lessons)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app.screen.query_one("#lessons").highlighted = 1
        await pilot.press("enter")
        await press(pilot)
        assert isinstance(app.screen, CompareScreen)
        runners = app.screen.runners
        await press(pilot, "n")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, LessonPicker)
    assert all(r._closed for r in runners)


@needs_lab()
@pilot_test
async def test_in_the_lab_each_run_has_its_own_namespaces_and_all_go_away():
    from ikelab.lab.netns import ikelab_namespaces

    def ours() -> set[str]:
        return {n for n in ikelab_namespaces() if n.startswith(f"ikelab-{os.getpid()}x")}

    before = ours()
    app = IkelabApp(load_lesson(SLUG), 1, TransportChoice("netns"))
    async with app.run_test(size=(120, 40)) as pilot:
        await press(pilot, "c")
        screen = app.screen
        assert all(r.finished and r.ping_ready for r in screen.runners)
        assert len(ours() - before) == 4
        assert "netns" in screen.sub_title
    assert not ours() - before


# ---------------------------------------------------------------------- against tshark


@needs_lab()
@needs_tshark()
def test_the_figures_are_what_tshark_reads_on_the_wire(tmp_path: Path):
    """Each run in its own lab with tcpdump on the veth; Wireshark's ISAKMP dissector counts."""
    from ikelab.lab.lab import Lab
    from ikelab.lab.session import Session

    for variant in load_lesson(SLUG).variants():
        capture = tmp_path / f"{variant.ike_version}.pcap"
        with Lab(variant, capture=capture) as lab:
            session = Session(variant, lab.transport, seed=1, datapath=lab.datapath, namespaces=lab.namespaces)
            session.run()
            lab.stop_capture()
        fields = subprocess.run(
            ["tshark", "-r", str(capture), "-Y", "isakmp", "-T", "fields", "-E", "separator=;",
             "-e", "udp.length", "-e", "isakmp.flag_e", "-e", "isakmp.nextpayload"],
            capture_output=True, text=True, check=True,
        ).stdout.split()
        p = profile(variant, session.trace.events)
        assert len(fields) == p.messages
        assert sum(int(f.split(";")[0]) - 8 for f in fields) == p.bytes
        # IKEv1 sets the E flag of the header; IKEv2's first payload is SK (46).
        on_wire = [n for n, f in enumerate(fields, start=1) if f.split(";")[1] == "1" or f.split(";")[2].split(",")[0] == "46"]
        assert on_wire == list(p.encrypted)
