"""The lesson screen: the ladder above tabs of panels, stepping the run on the keys.

Every job on the run (setting up the lab, a step, a replay, the ping, the export) runs in a
thread worker so the screen never freezes; jobs queue in order, so keys pressed while one is
running are not lost. After each job the ladder and the tab on screen redraw from the trace; the
other tabs redraw when they are shown.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, OptionList, Static, TabbedContent, TabPane

from ikelab.tui.focus import focus_message, narrative_key
from ikelab.tui.jobs import RunJobs
from ikelab.tui.ladder import Ladder
from ikelab.tui.message_view import MessageView
from ikelab.tui.panels.auth import AuthPanel
from ikelab.tui.panels.datapath import DatapathPanel
from ikelab.tui.panels.dh import DhPanel
from ikelab.tui.panels.keys import KeysPanel
from ikelab.tui.panels.lesson_text import LessonText
from ikelab.tui.panels.ping import PingPanel
from ikelab.tui.panels.sas import SaPanel, ike_sas
from ikelab.tui.runner import PING_COUNT, STAND_IN_TEXT, Runner

BUSY_TEXT = {
    "open": "setting up…",
    "next": "stepping…",
    "back": "replaying from the seed to the previous step…",
    "restart": "restarting…",
    "continue": "running to the end…",
    "ping": "pinging through the tunnel…",
    "export": "writing the capture…",
}
TRANSPORT_TEXT = {
    "netns": "the namespace lab (two network namespaces joined by veth)",
    "loopback": "loopback UDP (no namespaces, no datapath)",
    "memory": "in-process memory transport (no sockets, no datapath)",
}
TABS = ["tab-lesson", "tab-message", "tab-dh", "tab-keys", "tab-auth", "tab-sas", "tab-ping", "tab-datapath"]


class LessonScreen(RunJobs, Screen):
    BUSY_TEXT = BUSY_TEXT
    LAB_TEXT = "setting up the lab: two namespaces, a veth pair, the ESP datapath…"
    BINDINGS: ClassVar[list[Binding]] = [
        Binding("n,space", "next", "Next", priority=True),
        Binding("b", "back", "Back"),
        Binding("r", "restart", "Restart"),
        Binding("c", "continue", "Continue"),
        Binding("p", "ping", "Ping"),
        Binding("e", "export", "Export"),
        Binding("question_mark", "help", "Help"),
        Binding("escape", "lessons", "Lessons"),
        Binding("q", "app.quit", "Quit"),
        *(Binding(str(i), f"tab('{tab}')", f"{tab.removeprefix('tab-')} tab", show=False) for i, tab in enumerate(TABS, start=1)),
    ]

    def __init__(self, runner: Runner, from_picker: bool = False) -> None:
        super().__init__()
        self.runner = runner
        self.from_picker = from_picker
        self.lesson = runner.lesson
        self._init_jobs()
        # The run as last drawn, and the tabs not redrawn since (see show_run).
        self._events: list = []
        self._step = None
        self._focus = self._selected = None
        self._stale: set[str] = set(TABS)

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        choice = self.runner.transport_choice
        if choice.lab_unavailable:
            yield Static(f"⚠ The namespace lab is not available here: {choice.lab_unavailable}. Running "
                         f"{STAND_IN_TEXT[choice.name]} instead: no namespaces, no datapath and no ping stage.", id="banner")
        yield Ladder(self.lesson, id="ladder")
        with TabbedContent(id="tabs"):
            with TabPane("Lesson", id="tab-lesson"):
                yield LessonText(id="lesson-text")
            with TabPane("Message", id="tab-message"):
                yield MessageView(id="message")
            with TabPane("DH", id="tab-dh"):
                yield DhPanel(id="dh")
            with TabPane("Keys", id="tab-keys"):
                yield KeysPanel(id="keys")
            with TabPane("AUTH", id="tab-auth"):
                yield AuthPanel(id="auth")
            with TabPane("SAs", id="tab-sas"):
                yield SaPanel(id="sas")
            with TabPane("Ping", id="tab-ping"):
                yield PingPanel(id="ping")
            with TabPane("Datapath", id="tab-datapath"):
                yield DatapathPanel(id="datapath")
        yield Static(id="status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.title = f"ikelab · {self.lesson.slug}"
        self.show_run()
        # After the first paint: opening loads the engines (and in the lab builds namespaces).
        self.call_after_refresh(self._submit, "open")

    # ------------------------------------------------------------------ jobs

    def _opens_lab(self) -> bool:
        return self.runner.transport_choice.name == "netns"

    def _job_open(self) -> None:
        self.runner.open()

    def _job_next(self) -> None:
        if self.runner.step() is None and self.runner.finished:
            self._notice = "The run is over: b steps back, r restarts" + (", p pings through the tunnel." if self.runner.ping_ready else ".")

    def _job_back(self) -> None:
        if not self.runner.steps:
            self._notice = "Already at the start."
        self.runner.back()

    def _job_restart(self) -> None:
        self.runner.restart()

    def _job_continue(self) -> None:
        self.runner.run_to_end()

    class PingLine(Message):
        """A line of the ping arrived (posted from the run's thread)."""

    def _job_ping(self) -> None:
        # post_message does not wait for the UI: a quit during the ping cannot deadlock on it.
        self.runner.ping(lambda line: self.post_message(self.PingLine()))

    def _job_export(self) -> None:
        path = Path.cwd() / f"ikelab-{self.lesson.slug}.pcapng"
        self.runner.export(path)
        self._notice = f"Wrote {path} and Wireshark's decryption tables in {path.with_suffix('.wireshark')}/"

    # ------------------------------------------------------------------ actions

    def action_next(self) -> None:
        self._submit("next")

    def action_back(self) -> None:
        self._submit("back")

    def action_restart(self) -> None:
        self._submit("restart")

    def action_continue(self) -> None:
        self._submit("continue")

    def action_ping(self) -> None:
        if not self.runner.ping_ready and not self.busy:
            self.notify(self._ping_status(), severity="warning")
            return
        self.action_tab("tab-ping")
        self._submit("ping")

    def action_export(self) -> None:
        if not self.runner.steps and not self.busy:
            self.notify("Nothing to export yet: take a step first.", severity="warning")
            return
        self._submit("export")

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_lessons(self) -> None:
        self.app.pop_screen()
        # Tearing the lab down takes a moment: not on the UI thread (the app closes it again on exit).
        self.app.run_worker(self.runner.close, thread=True, group="close")

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """Hide the keys that cannot apply here: going back to a picker that was never shown, and
        the ping stage without the lab."""
        if action == "lessons":
            return self.from_picker
        if action == "ping":
            return self.runner.transport_choice.name == "netns"
        return True

    def action_help(self) -> None:
        from ikelab.tui.help import HelpScreen

        self.app.push_screen(HelpScreen())

    # ------------------------------------------------------------------ drawing

    def _ping_status(self) -> str:
        choice = self.runner.transport_choice
        if choice.name != "netns":
            why = f"the lab is not available ({choice.lab_unavailable})" if choice.lab_unavailable else f"the {choice.name} transport has no datapath"
            return f"No ping stage: {why}."
        if not self.runner.ping_ready:
            return "The ping stage opens once both peers have their Child SAs: step to the end (c), then press p."
        left, right = self.lesson.left, self.lesson.right
        return f"Press p to send {PING_COUNT} pings from {left.protected} to {right.protected} through the tunnel."

    def on_lesson_screen_ping_line(self, message: PingLine) -> None:
        self._events = list(self.runner.session.trace.events)
        self._stale |= {"tab-ping", "tab-sas"}
        self._draw(self.query_one(TabbedContent).active)

    def show_run(self) -> None:
        """Take the run as it stands: redraw the ladder and the tab on screen, the others when shown."""
        runner = self.runner
        self._events = events = list(runner.session.trace.events) if runner.session else []
        self._step = step = runner.steps[-1] if runner.steps else None
        self._focus = self._selected = focus_message(events, step)
        finished = runner.finished
        self.query_one(Ladder).show(events, runner.steps, self._focus)
        self.sub_title = self._sub_title(step, finished)
        if not self.busy:
            self.query_one("#status", Static).update(self._outcome(events, finished))
        # Drawing only the visible tab keeps a step fast; the others catch up when activated.
        self._stale = set(TABS)
        self._draw(self.query_one(TabbedContent).active)

    def _draw(self, tab: str) -> None:
        if tab not in self._stale:
            return
        self._stale.discard(tab)
        events, lesson = self._events, self.lesson
        if tab == "tab-lesson":
            self.query_one(LessonText).show(lesson, self._step, narrative_key(self._focus, self._step), events, self.runner.finished)
        elif tab == "tab-message":
            self.query_one(MessageView).show(self._selected)
        elif tab == "tab-dh":
            self.query_one(DhPanel).show(lesson, events)
        elif tab == "tab-keys":
            self.query_one(KeysPanel).show(events)
        elif tab == "tab-auth":
            self.query_one(AuthPanel).show(events, lesson.ike_version)
        elif tab == "tab-sas":
            self.query_one(SaPanel).show(lesson, events)
        elif tab == "tab-ping":
            self.query_one(PingPanel).show(events, self._ping_status())
        elif tab == "tab-datapath":
            self.query_one(DatapathPanel).show(events, f"Transport: {TRANSPORT_TEXT[self.runner.transport_choice.name]}")

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self._draw(event.pane.id)

    def _sub_title(self, step, finished: bool) -> str:
        runner = self.runner
        where = f"step {step.index + 1}" if step else "not started"
        seed = f"seed {runner.seed}" + ("" if runner.seed_given else " (random)")
        return f"{where}{' (end)' if finished else ''} · {seed} · {runner.transport_choice.name}"

    def _outcome(self, events, finished: bool) -> Text:
        if self.lesson.manual and finished:
            return Text("✓ static SAs installed on both sides (no IKE)", "bold green")
        latest = [e for states in ike_sas(events).values() for e in states.values()]
        failed = [e for e in latest if e.state == "failed"]
        if failed:
            return Text("✗ IKE SA failed: " + "; ".join(f"{e.peer}: {e.reason}" for e in failed), "bold red")
        up = {e.peer for e in latest if e.state == "established"}
        if up >= {p.name for p in self.lesson.peers}:
            return Text("✓ IKE SA established on both sides" + (", the run is over" if finished else ""), "bold green")
        return Text(", ".join(f"{e.peer}: IKE SA {e.state}" for e in latest))

    # ------------------------------------------------------------------ ladder and tabs

    @on(OptionList.OptionHighlighted, "#arrows")
    def _arrow_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        ladder = self.query_one(Ladder)
        if event.option_index < len(ladder.messages):
            self._selected = ladder.messages[event.option_index]
            self._stale.add("tab-message")
            self._draw(self.query_one(TabbedContent).active)

    @on(OptionList.OptionSelected, "#arrows")
    def _arrow_selected(self, event: OptionList.OptionSelected) -> None:
        self.action_tab("tab-message")
