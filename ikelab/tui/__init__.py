"""The terminal UI: a lesson picker and a step-through lesson screen, reading the trace."""

from __future__ import annotations

import sys


def run_app(lesson_name: str | None, seed: int | None, transport: str | None) -> int:
    """Run the TUI: the lesson picker when `lesson_name` is None. Returns the exit status.

    `transport` is "netns", "loopback", "memory" or None (the lab where it can start, else
    loopback with a banner saying why). Every lab opened is closed before this returns.
    """
    from ikelab.lessons import LessonError, list_lessons, load_lesson
    from ikelab.tui.app import IkelabApp
    from ikelab.tui.runner import TransportUnavailable, choose_transport

    try:
        lesson = load_lesson(lesson_name) if lesson_name else None
        choice = choose_transport(transport, lesson)
        lessons = [] if lesson else list_lessons()
        if lesson is not None and lesson.external and choice.name != "netns":
            raise TransportUnavailable(f"{lesson.slug} runs strongSwan on one side: it needs the namespace lab"
                                       + (f" ({choice.lab_unavailable})" if choice.lab_unavailable else ""))
    except (LessonError, TransportUnavailable) as e:
        print(f"ikelab: error: {e}", file=sys.stderr)
        return 2
    app = IkelabApp(lesson, seed, choice, lessons)
    try:
        app.run()
    finally:
        app.close_runners()
    return app.return_code or 0
