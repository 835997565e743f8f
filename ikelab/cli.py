"""ikelab's command line: argument parsing, and handing over to the layers that do the work."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ikelab import __version__

SEED_WARNING = (
    "warning: --seed {seed} makes this run deterministic: SPIs, nonces, Diffie-Hellman private values and "
    "keys are predictable from the seed. For teaching and tests only, never for real traffic."
)


class UsageError(Exception):
    """A problem with what the user asked for; printed as one line, exit status 2."""


def _hex(text: str) -> bytes:
    cleaned = text.strip().lower().removeprefix("0x").replace(":", "").replace(" ", "")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not hexadecimal") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ikelab",
        description="Step through real IKE exchanges between two peers and see every value they compute.",
    )
    parser.add_argument("--version", action="version", version=f"ikelab {__version__}")
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="run a lesson: both peers, to the end")
    run.add_argument("lesson", help="a lesson slug (see `ikelab lessons`) or a lesson file")
    run.add_argument("--headless", action="store_true", help="no terminal UI: print the transcript")
    run.add_argument("--json", action="store_true", help="print the trace as JSON lines instead of text")
    run.add_argument("--seed", type=int, help="make the run byte-for-byte repeatable (not secure)")
    run.add_argument("--transport", choices=["memory", "loopback"], default="memory", help="how datagrams travel (default: memory)")
    run.add_argument("--pcap", type=Path, metavar="FILE", help="write an annotated pcapng and Wireshark's decryption tables beside it")

    keys = sub.add_parser("keys", help="compute IKE keys from given inputs (check your own arithmetic)")
    keys_sub = keys.add_subparsers(dest="version", required=True)
    v2 = keys_sub.add_parser("ikev2", help="SKEYSEED and SK_* of an IKEv2 SA (RFC 7296 §2.14)")
    for name, help_text in (("ni", "initiator nonce"), ("nr", "responder nonce"), ("gir", "Diffie-Hellman shared secret g^ir"), ("spii", "initiator SPI"), ("spir", "responder SPI")):
        v2.add_argument(f"--{name}", type=_hex, required=True, metavar="HEX", help=help_text)
    v2.add_argument("--prf", required=True, metavar="NAME", help="PRF keyword: prfsha1, prfsha256, prfsha384, prfsha512")
    v2.add_argument("--encr", default="aes128", metavar="NAME", help="encryption keyword, sets SK_e's length (default aes128)")
    v2.add_argument("--integ", metavar="NAME", help="integrity keyword, sets SK_a's length (default sha256; none for AEAD)")
    v2.add_argument("--json", action="store_true", help="print a JSON object keyed SKEYSEED, SK_d, ...")

    lessons = sub.add_parser("lessons", help="list the lessons, or check a lesson file")
    lessons_sub = lessons.add_subparsers(dest="action")
    check = lessons_sub.add_parser("check", help="validate a lesson file")
    check.add_argument("file")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return cmd_run(args)
        if args.command == "keys":
            return cmd_keys_ikev2(args)
        if args.command == "lessons":
            return cmd_lessons(args)
        return cmd_default()
    except UsageError as e:
        print(f"ikelab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ikelab: interrupted", file=sys.stderr)
        return 130


def cmd_default() -> int:
    from ikelab.lessons import LessonError, list_lessons

    try:
        lessons = list_lessons()
    except LessonError as e:
        raise UsageError(str(e)) from None
    print("ikelab: the terminal UI is not part of this version yet. Run a lesson headless:")
    for lesson in lessons:
        print(f"  ikelab run {lesson.slug} --headless      # {lesson.title}")
    return 0


def cmd_lessons(args) -> int:
    from ikelab.lessons import LessonError, list_lessons, load_lesson

    try:
        if args.action == "check":
            lesson = load_lesson(Path(args.file) if Path(args.file).exists() else args.file)
            print(f"{lesson.path}: ok ({lesson.title})")
            return 0
        for lesson in list_lessons():
            print(f"{lesson.slug:24} {lesson.title}")
        return 0
    except LessonError as e:
        raise UsageError(str(e)) from None


def cmd_keys_ikev2(args) -> int:
    from ikelab.crypto import ikev2_kdf
    from ikelab.crypto.names import UnknownAlgorithm, parse_proposal

    integ = args.integ
    text = "-".join(p for p in (args.encr, integ, args.prf, "modp2048") if p)
    try:
        spec = parse_proposal(text, ike=True)
    except (UnknownAlgorithm, ValueError) as e:
        raise UsageError(str(e).strip("'\"")) from None
    cipher, prf = spec.encryption[0], spec.prf[0]
    integrity = spec.integrity[0] if spec.integrity else None
    if integ is None and not cipher.is_aead:
        integrity = parse_proposal("aes128-sha256", ike=False).integrity[0]
    skeyseed = ikev2_kdf.skeyseed(prf, args.ni, args.nr, args.gir)
    keys, _ = ikev2_kdf.ike_sa_keys(
        prf, skeyseed, args.ni, args.nr, args.spii, args.spir, cipher.key_length, integrity.key_length if integrity else 0
    )
    values = {"SKEYSEED": skeyseed, **keys.as_dict()}
    if args.json:
        print(json.dumps({k: v.hex() for k, v in values.items()}, indent=2))
        return 0
    print(f"SKEYSEED = prf(Ni | Nr, g^ir)   with {prf.description}")
    print(f"{{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)")
    print(f"  lengths: SK_d/SK_p {prf.output_length}, SK_a {integrity.key_length if integrity else 0} ({integrity.description if integrity else 'AEAD: none'}), SK_e {cipher.key_length} ({cipher.description})")
    for name, value in values.items():
        print(f"{name:8} = {value.hex() or '(empty)'}")
    return 0


def cmd_run(args) -> int:
    from ikelab.export.capture import export_capture
    from ikelab.export.transcript import render_jsonl, render_text
    from ikelab.lab.session import Session
    from ikelab.lab.transports import LoopbackTransport, MemoryTransport, TransportError
    from ikelab.lessons import LessonError, load_lesson

    try:
        lesson = load_lesson(args.lesson)
    except LessonError as e:
        raise UsageError(str(e)) from None
    if args.seed is not None:
        print(SEED_WARNING.format(seed=args.seed), file=sys.stderr)
    if not args.headless:
        print("ikelab: the terminal UI is not part of this version yet; running headless.", file=sys.stderr)
    try:
        if args.transport == "loopback":
            transport = LoopbackTransport([p.name for p in lesson.peers])
        else:
            transport = MemoryTransport({p.name: p.address for p in lesson.peers})
    except TransportError as e:
        raise UsageError(str(e)) from None
    try:
        session = Session(lesson, transport, seed=args.seed)
        outcome = session.run()
    finally:
        transport.close()

    if args.json:
        print(render_jsonl(session.trace))
    else:
        print(f"== {lesson.title} ({lesson.slug}), transport {transport.name}" + (f", seed {args.seed}" if args.seed is not None else ""))
        print(render_text(session.trace))
        print()
        print(summary(session))
    if args.pcap:
        written = export_capture(args.pcap, session.trace, lesson)
        print(f"wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    return 0 if outcome.success else 3


def summary(session) -> str:
    outcome = session.outcome
    lines = []
    for name in session.peers:
        if name in outcome.failures:
            f = outcome.failures[name]
            lines.append(f"{name}: IKE SA failed" + (f" ({f.notify})" if f.notify else "") + f": {f.reason}")
        elif outcome.ike_up.get(name):
            children = outcome.children[name]
            lines.append(f"{name}: IKE SA established, {len(children)} Child SA(s) installed")
        else:
            lines.append(f"{name}: no IKE SA")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
