"""Instructions per in-memory IKEv2 handshake that are not DH, counted by valgrind.

On a shared machine wall time moves by 1.5x from one minute to the next; an instruction count
moves by well under 1%, so it is the figure to compare two versions of the code with (the wall
time of bench/handshake.py is the one the target is stated in). This runs itself twice under
`valgrind --tool=cachegrind`: N sessions of the lesson built and dropped, and N sessions built, run
and dropped, as bench/handshake.py's memory runs do (system RNG, gc on), each after one handshake
that warms up imports and caches; the difference over N is one handshake of both peers, setup left
out, and freeing the session included (the bench frees it after its timer stops). MODP exponentiation is cut to a few bits, as in that
bench's diagnostic row, so that DH, which is not counted here, costs almost nothing.
The last line is a JSON object with the figures.
Run: .venv/bin/python bench/instructions.py [--handshakes N] [--lesson ikev2-psk]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTRUCTIONS = re.compile(r"I\s+refs:\s+([\d,]+)")


def sessions(lesson_name: str, count: int, run: bool) -> None:
    """Build `count` sessions one after another, run each if `run`, and drop it (the counted work)."""
    sys.path.insert(0, str(ROOT))
    from ikelab.crypto import dh
    from ikelab.lab.session import Session
    from ikelab.lab.transports import MemoryTransport
    from ikelab.lessons import load_lesson

    dh._powmod = lambda base, exponent, modulus: pow(base, exponent % 2 + 2, modulus)  # not a secure handshake
    lesson = load_lesson(lesson_name)
    Session(lesson, MemoryTransport.for_lesson(lesson)).run()  # in both counts: imports, caches, first-time work
    for _ in range(count):
        session = Session(lesson, MemoryTransport.for_lesson(lesson))
        if run:
            session.run()
            if not session.outcome.success:
                raise SystemExit(f"the handshake of {lesson_name} failed: {session.outcome.failures}")
        del session


def counted(lesson_name: str, count: int, run: bool) -> int:
    """Instructions valgrind counted for `sessions(...)` in a fresh interpreter."""
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
               sys.executable, __file__, "--child", "run" if run else "build", "--handshakes", str(count),
               "--lesson", lesson_name]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    found = INSTRUCTIONS.search(result.stderr)
    if result.returncode != 0 or found is None:
        raise SystemExit(f"valgrind run failed (exit {result.returncode}):\n{result.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--handshakes", type=int, default=40)
    parser.add_argument("--lesson", default="ikev2-psk")
    parser.add_argument("--child", choices=("build", "run"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.handshakes < 1:
        parser.error("--handshakes must be at least 1")
    if args.child:
        sessions(args.lesson, args.handshakes, run=args.child == "run")
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind not found: apt install valgrind")
    sys.path.insert(0, str(ROOT))
    from ikelab.lessons import LessonError, load_lesson

    try:
        load_lesson(args.lesson)  # a wrong name is said here, not inside valgrind's output
    except LessonError as e:
        raise SystemExit(f"bench/instructions.py: {e}") from None
    built = counted(args.lesson, args.handshakes, run=False)
    ran = counted(args.lesson, args.handshakes, run=True)
    per_handshake = (ran - built) // args.handshakes
    print(f"{args.lesson}: {per_handshake:,} instructions per handshake, both peers, not DH and not setup"
          f" ({args.handshakes} handshakes, {os.path.realpath(sys.executable)})")
    print(json.dumps({"lesson": args.lesson, "handshakes": args.handshakes, "instructions_per_handshake": per_handshake,
                      "python": os.path.realpath(sys.executable)}))


if __name__ == "__main__":
    main()
