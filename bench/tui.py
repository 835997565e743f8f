"""How fast the TUI opens and steps, and how much memory it takes.

Measures, for lesson ikev2-psk at seed 1 (memory transport unless --transport says otherwise):
- first screen: from launching a fresh Python process to the lesson screen drawn (interpreter start
  and imports included), and to the run ready to step (for the lab: namespaces and datapath up);
- one step: from the key to every panel redrawn from the trace (the protocol work of the step, the
  hand-over to the run's thread and back, and the redraw), for each step of the run, several runs;
- peak memory: the maximum resident set size of that process.
CPU times beside the wall times tell the work from waiting on a machine that is busy elsewhere.
Prints a line per figure and, as its last line, a JSON object. Targets: first screen < 1.5 s, a step
< 100 ms, < 150 MB. Run: python bench/tui.py [--runs N] [--transport memory|loopback|netns]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"first_screen_ms": 1500, "step_ms": 100, "peak_rss_mb": 150}


def child(runs: int, transport: str) -> None:
    """The measured process: prints FIRST and READY when reached, then a JSON line of its figures."""
    sys.path.insert(0, str(ROOT))
    from ikelab.lessons import load_lesson
    from ikelab.tui.app import IkelabApp
    from ikelab.tui.lesson_screen import LessonScreen
    from ikelab.tui.runner import TransportChoice

    drawn: list[float] = []
    original = LessonScreen.show_run

    def timed_show_run(self) -> None:
        original(self)
        drawn.append(time.perf_counter())

    LessonScreen.show_run = timed_show_run

    async def main() -> dict:
        app = IkelabApp(load_lesson("ikev2-psk"), 1, TransportChoice(transport))
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            print("FIRST", flush=True)
            first_cpu = time.process_time() * 1000
            screen = app.screen
            while screen.busy:
                await asyncio.sleep(0.001)
            print("READY", flush=True)
            steps, cpu = [], []
            for _ in range(runs):
                screen.action_restart()
                while screen.busy:
                    await asyncio.sleep(0.001)
                for _ in range(5):
                    start, start_cpu = time.perf_counter(), time.process_time()
                    screen.action_next()
                    while screen.busy:
                        await asyncio.sleep(0.001)
                    steps.append((drawn[-1] - start) * 1000)
                    cpu.append((time.process_time() - start_cpu) * 1000)
            assert screen.runner.finished
        return {"steps_ms": steps, "steps_cpu_ms": cpu, "first_screen_cpu_ms": first_cpu,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}

    print(json.dumps(asyncio.run(main())), flush=True)


def parent(runs: int, transport: str) -> dict:
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, __file__, "--child", "--runs", str(runs), "--transport", transport],
                               stdout=subprocess.PIPE, text=True, cwd=ROOT)
    marks = {}
    result = None
    for line in process.stdout:
        word = line.strip()
        if word in ("FIRST", "READY"):
            marks[word] = (time.perf_counter() - start) * 1000
        elif word.startswith("{"):
            result = json.loads(word)
    if process.wait() != 0 or result is None:
        raise SystemExit("the measured process failed")
    steps = result["steps_ms"]
    return {
        "transport": transport,
        "first_screen_ms": round(marks["FIRST"], 1),
        "first_screen_cpu_ms": round(result["first_screen_cpu_ms"], 1),
        "ready_ms": round(marks["READY"], 1),
        "step_ms_median": round(statistics.median(steps), 2),
        "step_ms_max": round(max(steps), 2),
        "step_cpu_ms_median": round(statistics.median(result["steps_cpu_ms"]), 2),
        "steps_measured": len(steps),
        "peak_rss_mb": round(result["peak_rss_mb"], 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of the 5-step lesson to time (default 3)")
    parser.add_argument("--transport", choices=["memory", "loopback", "netns"], default="memory")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.runs, args.transport)
        return 0
    figures = parent(args.runs, args.transport)
    figures["ok"] = (figures["first_screen_ms"] < TARGETS["first_screen_ms"] and figures["step_ms_max"] < TARGETS["step_ms"]
                     and figures["peak_rss_mb"] < TARGETS["peak_rss_mb"])
    print(f"first screen      {figures['first_screen_ms']:8.1f} ms   (target < {TARGETS['first_screen_ms']} ms)")
    print(f"  of which CPU    {figures['first_screen_cpu_ms']:8.1f} ms   (the rest is waiting, e.g. for a busy machine)")
    print(f"ready to step     {figures['ready_ms']:8.1f} ms   ({args.transport} transport)")
    print(f"one step, median  {figures['step_ms_median']:8.2f} ms   (target < {TARGETS['step_ms']} ms)")
    print(f"one step, max     {figures['step_ms_max']:8.2f} ms   ({figures['steps_measured']} steps)")
    print(f"one step, CPU     {figures['step_cpu_ms_median']:8.2f} ms   (median, all threads)")
    print(f"peak memory       {figures['peak_rss_mb']:8.1f} MB   (target < {TARGETS['peak_rss_mb']} MB)")
    print(json.dumps(figures))
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
