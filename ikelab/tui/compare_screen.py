"""Two protocols side by side: a lesson with `compare = [...]` runs once per protocol, one ladder each.

n steps both runs by one step, so after k presses both have put k messages on the wire and the
difference is plain to see (IKEv2 done after four, IKEv1 main mode still without authentication);
[ and ] step one run alone. b takes a step back on the run that is ahead (both when they are
level), which undoes either kind of stepping. The Comparison tab is computed from the two traces
as they stand (ikelab.lab.compare), never typed in.

Each run is an ordinary Runner (its own lab in the namespace transport), so replaying, the lab's
life cycle and the close on every exit path are those of the one-run screen.
"""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Markdown, OptionList, Static, TabbedContent, TabPane

from ikelab.lab.compare import Profile, message_label, profile, protocol_name, side_by_side_rows
from ikelab.lab.runs import STAND_IN_TEXT
from ikelab.lessons import Lesson
from ikelab.trace import IkeSaEvent, MessageEvent
from ikelab.tui.focus import focus_message, narrative_key
from ikelab.tui.help import HelpScreen
from ikelab.tui.jobs import RunJobs
from ikelab.tui.ladder import Ladder
from ikelab.tui.message_view import MessageView
from ikelab.tui.panels.base import TextPanel
from ikelab.tui.runner import Runner
from ikelab.tui.text import reflow

BUSY_TEXT = {
    "open": "setting up both runs…",
    "both": "stepping both runs…",
    "first": "stepping the left column's run…",
    "second": "stepping the right column's run…",
    "back": "replaying from the seed to the previous step…",
    "restart": "restarting both runs…",
    "continue": "running both to the end…",
}
TABS = ["tab-lesson", "tab-table", "tab-message"]

HELP = """\
# Two protocols side by side

| Key | What it does |
| --- | --- |
| `n`, space | both runs take one step: one datagram each carried to its peer |
| `[` | only the run in the left column takes a step |
| `]` | only the run in the right column takes a step |
| `b` | back one step on the run that is ahead (on both when they are level) |
| `r` | restart both runs |
| `c` | run both to the end |
| `1` `2` `3` | the Lesson, Comparison and Message tabs |
| `?` | this help; `escape` closes it |
| `q` | quit (every lab is removed) |

Each column is a real run of its protocol between the same two peers, with the same keys,
algorithms and networks. Stepping both together keeps the two ladders at the same number of
messages, so you see where each protocol stands after the same effort.

**Lesson**: what the message of each column's current step does, and how it differs.
**Comparison**: messages, round trips and bytes, the encrypted messages, where the identities
travel and after which message the IKE SA and the Child SA exist on both sides, all counted from
the two runs' traces as they stand.
**Message**: the payload tree and bytes of the arrow highlighted in either ladder.
"""


def short_name(lesson: Lesson, with_mode: bool = True) -> str:
    return "IKEv2" if lesson.ike_version == 2 else f"IKEv1 {lesson.mode}" if with_mode else "IKEv1"


class CompareHelp(HelpScreen):
    def compose(self) -> ComposeResult:
        from textual.containers import VerticalScroll

        with VerticalScroll():
            yield Markdown(HELP)


class SideLadder(Ladder):
    """A ladder in half the screen: the protocol between the peers' names, numbered arrows."""

    def _peers_line(self) -> Text:
        left, right = self.lesson.left.name, self.lesson.right.name
        room = max(self.size.width - 2 - len(left) - len(right) - 2, 0)
        title = next((t for t in (protocol_name(self.lesson), short_name(self.lesson)) if len(t) + 2 <= room), "")
        title = f" {title} " if title else ""
        before = (room - len(title)) // 2
        return Text.assemble((left, "bold"), " " + "─" * before, (title, "bold reverse"),
                             "─" * (room - before - len(title)) + " ", (right, "bold"))

    def arrow_label(self, number: int, message: MessageEvent) -> str:
        name = f"{message.exchange} {getattr(message, 'number', '')}" if message.ike_version == 1 else message_label(message)
        return f"{number} {name}  {message.summary}"


class CompareText(TextPanel):
    """Each run's step and the lesson's words for its message, in two columns."""

    def show(self, lesson: Lesson, runners: list[Runner], names: list[str], keys: list[str | None]) -> None:
        if not any(r.steps for r in runners):
            self.update(Group(Text(lesson.title, "bold underline"), Text(""), reflow(lesson.summary), Text(""),
                              Text("Press n (or space) to step both runs, [ or ] to step one, ? for help.", "italic")))
            return
        grid = Table.grid(padding=(0, 2), expand=True)
        for _ in runners:
            grid.add_column(ratio=1)
        cells = []
        for runner, name, key in zip(runners, names, keys):
            if not runner.steps:
                cells.append(Text(f"{name}: not started (] or [ steps one run)", "dim"))
                continue
            step = runner.steps[-1]
            head = Text.assemble((f"{name} · step {step.index + 1}: {step.label}", "bold underline"),
                                 ("  (the end of its run)" if runner.finished else "", "dim"))
            narrative = runner.lesson.narrative(key) if key else ""
            cells.append(Group(head, Text(""), reflow(narrative)) if narrative else head)
        grid.add_row(*cells)
        parts = [grid]
        if all(r.finished for r in runners) and lesson.checkpoints:
            parts += [Text(""), Text("Checkpoints", "bold")]
            parts += [Text("• ") + reflow(c) for c in lesson.checkpoints]
        self.update(Group(*parts))


class CompareTable(TextPanel):
    """The comparison, every value from the runs' traces (ikelab.lab.compare.side_by_side_rows)."""

    def show(self, profiles: list[Profile], caption: str) -> None:
        header, *rows = side_by_side_rows(profiles)
        table = Table(box=None, expand=True, pad_edge=False, header_style="bold")
        table.add_column(no_wrap=True, style="bold")
        for name in header[1:]:
            table.add_column(name, ratio=1, overflow="fold")
        for row in rows:
            table.add_row(*row)
        self.update(Group(table, Text(""), Text(caption, "dim italic")))


class CompareScreen(RunJobs, Screen):
    BUSY_TEXT = BUSY_TEXT
    LAB_TEXT = "setting up two labs: namespaces, veth pairs, the ESP datapath…"
    # No ladder takes the focus by itself: a focused ladder's highlight opens its arrows (see below).
    AUTO_FOCUS = ""
    BINDINGS: ClassVar[list[Binding]] = [
        Binding("n,space", "both", "Both", priority=True),
        Binding("left_square_bracket", "step(0)", "Left column", key_display="["),
        Binding("right_square_bracket", "step(1)", "Right column", key_display="]"),
        Binding("b", "back", "Back"),
        Binding("r", "restart", "Restart"),
        Binding("c", "continue", "Continue"),
        Binding("question_mark", "help", "Help"),
        Binding("escape", "lessons", "Lessons"),
        Binding("q", "app.quit", "Quit"),
        *(Binding(str(i), f"tab('{tab}')", f"{tab.removeprefix('tab-')} tab", show=False) for i, tab in enumerate(TABS, start=1)),
    ]
    DEFAULT_CSS = """
    CompareScreen #ladders { height: auto; max-height: 60%; }
    CompareScreen SideLadder { width: 1fr; max-height: 100%; }
    CompareScreen #ladder-0 { border-right: vkey $primary 40%; }
    CompareScreen #tabs { height: 1fr; }
    CompareScreen #message-head { height: 1; padding: 0 1; }
    """

    def __init__(self, lesson: Lesson, runners: list[Runner], from_picker: bool = False) -> None:
        super().__init__()
        self.lesson, self.runners, self.from_picker = lesson, runners, from_picker
        self._init_jobs()
        self._last = len(runners) - 1  # the run stepped last: its message opens in the Message tab
        self._selected: tuple[int, MessageEvent] | None = None
        self._keys: list[str | None] = [None] * len(runners)
        self._profiles: list[Profile] = []
        # Short names for the status and the headings: "IKEv1"/"IKEv2", with the mode where both are IKEv1.
        with_mode = len({r.lesson.ike_version for r in runners}) == 1
        self.names = [short_name(r.lesson, with_mode) for r in runners]
        self._stale: set[str] = set(TABS)

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        choice = self.runners[0].transport_choice
        if choice.lab_unavailable:
            yield Static(f"⚠ The namespace lab is not available here: {choice.lab_unavailable}. "
                         f"Running {STAND_IN_TEXT[choice.name]} instead.", id="banner")
        with Horizontal(id="ladders"):
            for i, runner in enumerate(self.runners):
                yield SideLadder(runner.lesson, id=f"ladder-{i}")
        with TabbedContent(id="tabs"):
            with TabPane("Lesson", id="tab-lesson"):
                yield CompareText(id="compare-text")
            with TabPane("Comparison", id="tab-table"):
                yield CompareTable(id="compare-table")
            with TabPane("Message", id="tab-message"):
                with Vertical():
                    yield Static(id="message-head")
                    yield MessageView(id="message")
        yield Static(id="status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.title = f"ikelab · {self.lesson.slug}"
        self.show_run()
        self.call_after_refresh(self._submit, "open")

    # ------------------------------------------------------------------ jobs (as on the one-run screen)

    def _opens_lab(self) -> bool:
        return self.runners[0].transport_choice.name == "netns"

    def _job_open(self) -> None:
        for runner in self.runners:
            runner.open()

    def _job_both(self) -> None:
        running = [i for i, r in enumerate(self.runners) if not r.finished]
        if not running:
            self._notice = "Both runs are over: b steps back, r restarts."
        for i in running:
            self.runners[i].step()
            self._last = i

    def _step_one(self, i: int) -> None:
        runner = self.runners[i]
        if runner.finished:
            self._notice = f"The {self.names[i]} run is over: b steps back, r restarts."
        runner.step()
        self._last = i

    def _job_first(self) -> None:
        self._step_one(0)

    def _job_second(self) -> None:
        self._step_one(1)

    def _job_back(self) -> None:
        counts = [len(r.steps) for r in self.runners]
        if not max(counts):
            self._notice = "Already at the start."
            return
        for i, runner in enumerate(self.runners):
            if counts[i] == max(counts):
                runner.back()
                self._last = i

    def _job_restart(self) -> None:
        for runner in self.runners:
            runner.restart()

    def _job_continue(self) -> None:
        for runner in self.runners:
            runner.run_to_end()

    # ------------------------------------------------------------------ actions

    def action_both(self) -> None:
        self._submit("both")

    def action_step(self, index: int) -> None:
        self._submit("first" if index == 0 else "second")

    def action_back(self) -> None:
        self._submit("back")

    def action_restart(self) -> None:
        self._submit("restart")

    def action_continue(self) -> None:
        self._submit("continue")

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_help(self) -> None:
        self.app.push_screen(CompareHelp())

    def action_lessons(self) -> None:
        self.app.pop_screen()
        for runner in self.runners:
            self.app.run_worker(runner.close, thread=True, group="close")

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        return self.from_picker if action == "lessons" else True

    # ------------------------------------------------------------------ drawing

    def show_run(self) -> None:
        """Take both runs as they stand: redraw the ladders, the status and the tab on screen."""
        self._profiles, self._keys, focus = [], [], []
        for i, runner in enumerate(self.runners):
            events = list(runner.session.trace.events) if runner.session else []
            step = runner.steps[-1] if runner.steps else None
            message = focus_message(events, step)
            self.query_one(f"#ladder-{i}", SideLadder).show(events, runner.steps, message)
            self._profiles.append(profile(runner.lesson, events))
            self._keys.append(narrative_key(message, step))
            focus.append(message)
        last = self._last
        self._selected = (last, focus[last]) if focus[last] is not None else next(((i, m) for i, m in enumerate(focus) if m), None)
        self.sub_title = self._sub_title()
        if not self.busy:
            self.query_one("#status", Static).update(self._status())
        self._stale = set(TABS)
        self._draw(self.query_one(TabbedContent).active)

    def _draw(self, tab: str) -> None:
        if tab not in self._stale:
            return
        self._stale.discard(tab)
        if tab == "tab-lesson":
            self.query_one(CompareText).show(self.lesson, self.runners, self.names, self._keys)
        elif tab == "tab-table":
            self.query_one(CompareTable).show(self._profiles, self._caption())
        elif tab == "tab-message":
            head = self.query_one("#message-head", Static)
            if self._selected is None:
                head.update(Text("No message yet: step a run, then highlight an arrow in either ladder.", "dim"))
                self.query_one(MessageView).show(None)
                return
            i, message = self._selected
            ladder = self.query_one(f"#ladder-{i}", SideLadder)
            number = next((n for n, m in enumerate(ladder.messages, start=1) if m is message), "?")
            head.update(Text.assemble((f"{self.names[i]} message {number}: {message_label(message)}", "bold"),
                                      ("  (highlight another arrow to open it)", "dim")))
            self.query_one(MessageView).show(message)

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self._draw(event.pane.id)

    @on(OptionList.OptionHighlighted, "#arrows")
    def _arrow_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        # The ladders highlight their newest arrow on every redraw: only the user's choice counts.
        if event.option_list.has_focus:
            self._select(event.option_list, event.option_index)

    @on(OptionList.OptionSelected, "#arrows")
    def _arrow_selected(self, event: OptionList.OptionSelected) -> None:
        self._select(event.option_list, event.option_index)
        self.action_tab("tab-message")

    def _select(self, arrows: OptionList, index: int) -> None:
        ladder = arrows.parent
        if isinstance(ladder, SideLadder) and index < len(ladder.messages):
            self._selected = (int(ladder.id.removeprefix("ladder-")), ladder.messages[index])
            self._stale.add("tab-message")
            self._draw(self.query_one(TabbedContent).active)

    def _sub_title(self) -> str:
        sides = []
        for name, runner in zip(self.names, self.runners):
            sides.append(f"{name} step {len(runner.steps)}{' (end)' if runner.finished else ''}")
        first = self.runners[0]
        seed = f"seed {first.seed}" + ("" if first.seed_given else " (random)")
        return " · ".join([*sides, seed, first.transport_choice.name])

    def _status(self) -> Text:
        parts = []
        for name, runner, p in zip(self.names, self.runners, self._profiles):
            events = runner.session.trace.events if runner.session else []
            failed = [e for e in events if isinstance(e, IkeSaEvent) and e.state == "failed"]
            if failed:
                state, style = f"✗ failed: {failed[0].reason}", "bold red"
            elif p.child_sa_after is not None:
                state, style = f"✓ Child SA after {p.child_sa_after} messages", "bold green"
            elif p.ike_sa_after is not None:
                state, style = "IKE SA up, no Child SA yet", "yellow"
            else:
                state, style = f"{p.messages} messages so far", ""
            parts.append(Text.assemble((f"{name}: ", "bold"), (state, style)))
        return Text(" │ ").join(parts)

    def _caption(self) -> str:
        first = self.runners[0]
        return (f"Counted from the two runs' traces as they stand (seed {first.seed}, {first.transport_choice.name} transport): "
                "messages and bytes as first sent, milestones after the message at which both peers had them. "
                "ikelab run " + self.lesson.slug + " --headless prints this table for complete runs.")
