"""Jobs on a run, for a screen: each in a thread worker so the screen never freezes, one at a time
and in the order asked, so keys pressed while one runs are not lost.

A screen that mixes this in names its jobs in BUSY_TEXT, does the work in `_job_<name>` methods
(which may leave a `_notice` for the user), redraws in `show_run()`, and has `#tabs` and `#status`.
"""

from __future__ import annotations

from collections import deque
from typing import ClassVar

from rich.text import Text
from textual.widgets import Static
from textual.worker import Worker, WorkerState


class RunJobs:
    BUSY_TEXT: ClassVar[dict[str, str]]
    LAB_TEXT: ClassVar[str]  # the status line while "open" builds a lab

    def _init_jobs(self) -> None:
        self._pending: deque[str] = deque()
        self._job: str | None = None
        self._notice: str | None = None  # a job's message for the user, shown when it is done

    def _opens_lab(self) -> bool:
        raise NotImplementedError

    @property
    def busy(self) -> bool:
        return self._job is not None or bool(self._pending)

    def _submit(self, job: str) -> None:
        self._pending.append(job)
        self._pump()

    def _pump(self) -> None:
        if self._job is not None or not self._pending:
            return
        job = self._job = self._pending.popleft()
        text = self.BUSY_TEXT[job]
        if job == "open" and self._opens_lab():
            text = self.LAB_TEXT
            self.query_one("#tabs").loading = True
        self.query_one("#status", Static).update(Text(f"⏳ {text}", "bold yellow"))
        self.run_worker(getattr(self, f"_job_{job}"), name=job, group="run", thread=True, exit_on_error=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "run" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        self._job = None
        self.query_one("#tabs").loading = False
        failure = None
        if event.state == WorkerState.ERROR:
            from ikelab.lab.netns import LabError

            error = event.worker.error
            what = "the lab failed" if isinstance(error, LabError) else f"{event.worker.name} failed"
            failure = f"{what}: {error}"
            self.notify(failure, severity="error", timeout=10)
            self._pending.clear()
        elif self._notice:
            self.notify(self._notice)
        self._notice = None
        self.show_run()
        if failure:
            self.query_one("#status", Static).update(Text(f"✗ {failure}", "bold red"))
        self._pump()
