"""ikelab's command line: argument parsing, and handing over to the layers that do the work."""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from ikelab import __version__
from ikelab.crypto.errors import UnknownAlgorithm

if TYPE_CHECKING:
    from ikelab.lab.runs import TransportChoice

T = TypeVar("T")

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


def _whole_number(lowest: int, highest: int, highest_shown: str):
    """An argparse type: a whole number from lowest to highest, both included."""

    def parse(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not lowest <= number <= highest:
            raise argparse.ArgumentTypeError(f"{text} is outside {lowest} to {highest_shown}")
        return number

    return parse


MAX_PINGS = 10000  # far more than a lesson needs; ping(8) would refuse huge counts in its own words
_seed = _whole_number(0, 2**256 - 1, "2**256 - 1")  # what the seeded generator takes (ikelab.rng)
_ping_count = _whole_number(0, MAX_PINGS, str(MAX_PINGS))


def _file_name(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty file name")
    return Path(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ikelab",
        description="Step through real IKE exchanges between two peers and see every value they compute.",
    )
    parser.add_argument("--version", action="version", version=f"ikelab {__version__}")
    sub = parser.add_subparsers(dest="command")

    tui = sub.add_parser("tui", help="step through a lesson in the terminal UI")
    tui.add_argument("lesson", help="a lesson slug (see `ikelab lessons`) or a lesson file")
    tui.add_argument("--seed", type=_seed, help="make the run repeatable (not secure); random when not given")
    tui.add_argument("--transport", choices=["netns", "loopback", "memory"], help="default: the lab where it can start")

    run = sub.add_parser("run", help="run a lesson: both peers, to the end")
    run.add_argument("lesson", help="a lesson slug (see `ikelab lessons`) or a lesson file")
    run.add_argument("--headless", action="store_true", help="no terminal UI: print the transcript")
    run.add_argument("--json", action="store_true", help="print the trace as JSON lines instead of text")
    run.add_argument("--seed", type=_seed, help="make the run byte-for-byte repeatable (not secure)")
    run.add_argument(
        "--transport",
        choices=["netns", "loopback", "memory"],
        help="how datagrams travel: netns (the lab: two namespaces joined by veth, the default where it can start), "
        "loopback (UDP on 127.0.0.1, no privileges) or memory (in-process)",
    )
    run.add_argument("--ping", type=_ping_count, metavar="N", default=0, help=f"after the handshake, send N pings (at most {MAX_PINGS}) through the tunnel (netns only)")
    run.add_argument("--datapath", choices=["auto", "kernel", "userspace"], default="auto", help="how the lab installs Child SAs (default: probe the kernel)")
    run.add_argument("--pcap", type=_file_name, metavar="FILE", help="write an annotated pcapng and Wireshark's decryption tables beside it")

    keys = sub.add_parser("keys", help="compute IKE keys from given inputs (check your own arithmetic)")
    keys_sub = keys.add_subparsers(dest="version", required=True)
    v2 = keys_sub.add_parser("ikev2", help="SKEYSEED and SK_* of an IKEv2 SA (RFC 7296 §2.14)")
    for name, help_text in (("ni", "initiator nonce"), ("nr", "responder nonce"), ("gir", "Diffie-Hellman shared secret g^ir"), ("spii", "initiator SPI"), ("spir", "responder SPI")):
        v2.add_argument(f"--{name}", type=_hex, required=True, metavar="HEX", help=help_text)
    v2.add_argument("--prf", required=True, metavar="NAME", help="PRF keyword: prfsha1, prfsha256, prfsha384, prfsha512")
    v2.add_argument("--encr", default="aes128", metavar="NAME", help="encryption keyword, sets SK_e's length (default aes128)")
    v2.add_argument("--integ", metavar="NAME", help="integrity keyword, sets SK_a's length (default sha256; none for AEAD)")
    v2.add_argument("--json", action="store_true", help="print a JSON object keyed SKEYSEED, SK_d, ...")

    peer = sub.add_parser("peer", help="run one ikelab peer of a lesson against another IKE implementation")
    peer.add_argument("lesson", help="a lesson slug or file: our side's settings are taken from it")
    peer.add_argument("--role", choices=["initiator", "responder"], required=True, help="which side of the lesson ikelab plays")
    peer.add_argument("--remote", required=True, metavar="ADDRESS", help="the other peer's address (a documentation address)")
    peer.add_argument("--local", metavar="ADDRESS", help="our address (default: the lesson's address for this side)")
    peer.add_argument("--seed", type=_seed, help="make our side's choices repeatable (not secure)")
    peer.add_argument("--json", action="store_true", help="print the trace as JSON lines")
    peer.add_argument("--pcap", type=_file_name, metavar="FILE", help="write our side's datagrams as an annotated pcapng (captured with ESP when the datapath runs)")
    peer.add_argument("--ping", type=_ping_count, metavar="N", default=0, help=f"after the Child SA is up, send N pings (at most {MAX_PINGS}) through the tunnel (needs the datapath: an ikelab namespace)")
    peer.add_argument("--datapath", choices=["auto", "kernel", "userspace"], default="auto", help="how Child SAs are installed when this is an ikelab namespace (default: probe the kernel)")

    lab = sub.add_parser("lab", help="manage the namespace lab")
    lab_sub = lab.add_subparsers(dest="action", required=True)
    clean = lab_sub.add_parser("cleanup", help="remove namespaces, processes and run directories (captures, strongSwan files) left by killed runs")
    clean.add_argument("--all", action="store_true", help="also remove those of runs that are still alive")
    sub.add_parser("doctor", help="check privileges, namespaces, TUN, kernel ESP and tools")

    v1 = keys_sub.add_parser("ikev1", help="SKEYID and its children, Ka and the IV of an IKEv1 phase 1 (RFC 2409)")
    for name, help_text in (("ni", "initiator nonce (Ni_b)"), ("nr", "responder nonce (Nr_b)"), ("gxy", "Diffie-Hellman shared secret g^xy"),
                            ("ckyi", "initiator cookie"), ("ckyr", "responder cookie")):
        v1.add_argument(f"--{name}", type=_hex, required=True, metavar="HEX", help=help_text)
    v1.add_argument("--hash", default="sha256", metavar="NAME", help="the negotiated hash: sha1, sha256, sha384, sha512")
    v1.add_argument("--encr", default="aes128", metavar="NAME", help="the negotiated cipher, sets Ka's length (default aes128)")
    v1.add_argument("--psk", metavar="TEXT", help="pre-shared key, its bytes as given; without it SKEYID is the signature form prf(Ni_b | Nr_b, g^xy)")
    v1.add_argument("--gxi", type=_hex, metavar="HEX", default=b"", help="initiator KE value, for the phase 1 IV")
    v1.add_argument("--gxr", type=_hex, metavar="HEX", default=b"", help="responder KE value, for the phase 1 IV")
    v1.add_argument("--json", action="store_true", help="print a JSON object keyed SKEYID, SKEYID_d, ...")

    sub.add_parser("compare", help="IKEv1 against IKEv2: messages, round trips and bytes, counted from runs")

    crack = sub.add_parser("crack", help="recover a weak PSK from an IKEv1 aggressive-mode capture (offline dictionary attack)")
    crack.add_argument("capture", type=Path, help="a pcap or pcapng with aggressive-mode messages 1 and 2")
    crack.add_argument("--wordlist", type=Path, required=True, metavar="FILE", help="candidate PSKs, one per line")
    crack.add_argument("--psk-crack", action="store_true", help="print the exchange in ike-scan's psk-crack format instead")

    lessons = sub.add_parser("lessons", help="list the lessons, or check a lesson file")
    lessons_sub = lessons.add_subparsers(dest="action")
    check = lessons_sub.add_parser("check", help="validate a lesson file")
    check.add_argument("file")
    return parser


def _terminate(signum, frame) -> None:
    # SIGTERM and SIGHUP (a closed terminal, a dropped ssh) unwind like Ctrl-C, so every `with` block
    # of the lab removes what it made; the run ends as Ctrl-C ends it, "interrupted", status 130.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    import signal

    # The TUI puts its own handlers for both in place once it runs (it leaves as q does).
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _terminate)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = _dispatch(args)
        sys.stdout.flush()  # a closed pipe or a full disk shows here, while it can still be reported
        return status
    except UsageError as e:
        print(f"ikelab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
            print("ikelab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as a command line tool does.
        _discard_stdout()
        return 1
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        _discard_stdout()
        print(f"ikelab: error: cannot write {e.filename or 'the output'}: {e.strerror}", file=sys.stderr)
        return 1


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so Python's flush at exit does not report the same failure again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _dispatch(args) -> int:
    if args.command == "run":
        return cmd_run(args)
    if args.command == "tui":
        return cmd_tui(args.lesson, args.seed, args.transport)
    if args.command == "keys":
        return cmd_keys_ikev2(args) if args.version == "ikev2" else cmd_keys_ikev1(args)
    if args.command == "crack":
        return cmd_crack(args)
    if args.command == "compare":
        from ikelab.lab.compare import compare, table

        print(table(compare()))
        return 0
    if args.command == "lessons":
        return cmd_lessons(args)
    if args.command == "lab":
        return cmd_lab_cleanup(args)
    if args.command == "peer":
        return cmd_peer(args)
    if args.command == "doctor":
        from ikelab.lab.doctor import run_doctor

        return run_doctor()
    return cmd_default()


def cmd_default() -> int:
    """The lesson picker in a terminal; without one (a pipe, a script), the list of lessons."""
    if sys.stdout.isatty() and sys.stdin.isatty():
        return cmd_tui(None, None, None)
    from ikelab.lessons import LessonError, list_lessons

    try:
        lessons = list_lessons()
    except LessonError as e:
        raise UsageError(str(e)) from None
    print("ikelab: no terminal for the lesson picker. Run a lesson headless:")
    for lesson in lessons:
        print(f"  ikelab run {lesson.slug} --headless      # {lesson.title}")
    return 0


def cmd_tui(lesson: str | None, seed: int | None, transport: str | None) -> int:
    from ikelab.tui import run_app

    if seed is not None:
        print(SEED_WARNING.format(seed=seed), file=sys.stderr)
    return run_app(lesson, seed, transport)


def cmd_lessons(args) -> int:
    from ikelab.lessons import LessonError, list_lessons, load_lesson

    try:
        if args.action == "check":
            lesson = load_lesson(Path(args.file) if Path(args.file).exists() else args.file)
            print(f"{lesson.path}: ok ({lesson.title})")
            return 0
        problems: list[LessonError] = []
        for lesson in list_lessons(problems):
            print(f"{lesson.slug:24} {lesson.title}")
        for problem in problems:  # the others are listed all the same
            print(f"ikelab: error: {problem}", file=sys.stderr)
        return 2 if problems else 0
    except LessonError as e:
        raise UsageError(str(e)) from None


def cmd_keys_ikev2(args) -> int:
    from ikelab.crypto import ikev2_kdf
    from ikelab.crypto.names import ENCRYPTION_KEYWORDS, INTEGRITY_KEYWORDS, PRF_KEYWORDS

    prf = _keyword("--prf", args.prf, "PRF", PRF_KEYWORDS)
    cipher = _keyword("--encr", args.encr, "encryption algorithm", ENCRYPTION_KEYWORDS)
    if cipher.is_aead and args.integ is not None:
        raise UsageError(f"--integ: {cipher.name} has its own integrity; drop --integ")
    integrity = None if cipher.is_aead else _keyword("--integ", args.integ or "sha256", "integrity algorithm", INTEGRITY_KEYWORDS)
    skeyseed = ikev2_kdf.skeyseed(prf, args.ni, args.nr, args.gir)
    keys, _ = ikev2_kdf.ike_sa_keys(
        prf, skeyseed, args.ni, args.nr, args.spii, args.spir, cipher.key_length, integrity.key_length if integrity else 0
    )
    values = {"SKEYSEED": skeyseed, **keys.as_dict()}
    if args.json:
        print(json.dumps({k: v.hex() for k, v in values.items()}, indent=2))
        return 0
    print(f"SKEYSEED = prf(Ni | Nr, g^ir)   with {prf.description}")
    print("{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)")
    print(f"  lengths: SK_d/SK_p {prf.output_length}, SK_a {integrity.key_length if integrity else 0} ({integrity.description if integrity else 'AEAD: none'}), SK_e {cipher.key_length} ({cipher.description})")
    for name, value in values.items():
        print(f"{name:8} = {value.hex() or '(empty)'}")
    return 0


def _keyword(option: str, text: str, kind: str, table: dict[str, T]) -> T:
    """The one algorithm `text` names in `table` (strongSwan keywords), or a usage error naming the option."""
    try:
        return table[text.strip().lower()]
    except KeyError:
        raise UsageError(f"{option}: {UnknownAlgorithm(kind, text, table)}") from None


def cmd_lab_cleanup(args) -> int:
    from ikelab.lab.lab import missing_privileges
    from ikelab.lab.netns import cleanup

    problem = missing_privileges()
    if problem:
        raise UsageError(f"cannot clean up: {problem}")
    removed = cleanup(include_live=args.all)
    print("\n".join(f"removed {n}" for n in removed) or "nothing to clean up")
    return 0


def cmd_peer(args) -> int:
    """IKE for one side, in the current network namespace, against --remote. In a namespace ikelab
    created (a lab's), the Child SAs are installed in our datapath there, with ping and a real capture;
    anywhere else nothing is installed (ikelab touches nothing outside its own namespaces) and they are
    shown as the `ip xfrm` commands that would install them."""
    import dataclasses
    import ipaddress

    from ikelab.lab.here import side_here
    from ikelab.lab.runs import one_peer, plain_ike_sockets
    from ikelab.lessons import DOCUMENTATION_NETWORKS, LessonError, load_lesson

    try:
        lesson = load_lesson(args.lesson)
    except LessonError as e:
        raise UsageError(str(e)) from None
    if lesson.manual:
        raise UsageError(f"{lesson.slug} is manually keyed: there is no IKE peer to run")
    if args.pcap:
        _check_pcap(args.pcap)
    try:
        remote = ipaddress.ip_address(args.remote)
    except ValueError:
        raise UsageError(f"--remote {args.remote!r} is not an IP address") from None
    if not any(remote in n for n in DOCUMENTATION_NETWORKS):
        raise UsageError(f"--remote {remote} is outside the documentation ranges ikelab may talk to")
    ours = next(p for p in lesson.peers if p.role == args.role)
    other = next(p for p in lesson.peers if p is not ours)
    local = args.local or ours.address
    try:
        own = ipaddress.ip_address(local)
    except ValueError:
        raise UsageError(f"--local {local!r} is not an IP address") from None
    if own == remote:  # our own sockets would answer our requests
        raise UsageError(f"--remote {remote} is our own address (--local, or the lesson's {ours.name} address): name the other peer")
    lesson = dataclasses.replace(lesson, **{ours.name: dataclasses.replace(ours, implementation="ikelab", address=local),
                                            other.name: dataclasses.replace(other, implementation="remote", address=str(remote))})
    side, why = side_here(ours.name, local, ours.protected)
    if side is None and args.ping:
        raise UsageError(f"--ping needs the datapath, which is not installed here: {why}")
    if side is not None:
        return _peer_with_datapath(args, lesson, side, other.protected, str(remote))
    import ikelab.lab.peer_session  # noqa: F401 - the engines, imported before anything is bound
    try:
        sockets = plain_ike_sockets(local)
    except OSError as e:
        raise UsageError(f"cannot listen on {local} ports 500 and 4500 here: {e}") from None
    print(f"ikelab: no datapath: {why}; the Child SAs are shown as `ip xfrm` commands, not installed", file=sys.stderr)
    if args.seed is not None:
        print(SEED_WARNING.format(seed=args.seed), file=sys.stderr)
    session = one_peer(lesson, ours.name, sockets, str(remote), args.seed)
    _report(args, session, f"udp from {local} to {remote}")
    if args.pcap:
        _export(args.pcap, session, lesson)
    return 0 if session.outcome.ike_up.get(ours.name) else 3


def _peer_with_datapath(args, lesson, side, remote_protected: str, remote: str) -> int:
    """`ikelab peer` in a namespace ikelab created: the Child SAs go into our datapath there, the
    ping runs through them, and --pcap is tcpdump on our interface (ESP included)."""
    import tempfile

    from ikelab.lab.here import PeerLab
    from ikelab.lab.netns import LabError
    import ikelab.lab.peer_session  # noqa: F401 - the engines: imported before anything is set up
    from ikelab.lab.runs import handshake_then_ping, peer_session_here

    if args.seed is not None:
        print(SEED_WARNING.format(seed=args.seed), file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="ikelab-capture-") as scratch:
        raw_capture = Path(scratch) / "peer.pcap" if args.pcap else None
        try:
            with PeerLab(lesson, side, remote_protected, capture=raw_capture, prefer_datapath=args.datapath) as lab:
                session = peer_session_here(lesson, lab, remote, args.seed)
                handshake_then_ping(session, lab, args.ping, None if args.json else _echo_ping)
        except LabError as e:
            raise UsageError(str(e)) from None
        _report(args, session, f"udp from {side.address} to {remote}, in {side.namespace}")
        if args.pcap:
            _export(args.pcap, session, lesson, raw_capture)
    return 0 if session.outcome.ike_up.get(side.name) else 3


def _echo_ping(line: str) -> None:
    """A ping line as it happens (the transcript comes only at the end)."""
    print(f"ikelab: ping: {line}", file=sys.stderr, flush=True)


def _pick_transport(args, lesson) -> TransportChoice:
    """The transport to use: `lab_unavailable` says why, when the lab cannot start and loopback
    (or memory, for a lesson with a router) stands in."""
    from ikelab.lab.runs import TransportUnavailable, choose_transport

    if args.transport in ("memory", "loopback") and args.ping:
        raise UsageError(f"--ping needs the namespace lab; --transport {args.transport} has no datapath")
    try:
        return choose_transport(args.transport, lesson)
    except TransportUnavailable as e:
        raise UsageError(str(e)) from None


def _fallback_message(choice: TransportChoice, ping: int) -> str:
    from ikelab.lab.runs import STAND_IN_TEXT

    lost = "no namespaces, no datapath" + (", no ping stage" if ping else "")
    return f"the lab cannot start ({choice.lab_unavailable}); running {STAND_IN_TEXT[choice.name]} instead: {lost}"


def cmd_keys_ikev1(args) -> int:
    from ikelab.crypto import ikev1_kdf
    from ikelab.crypto.names import ENCRYPTION_KEYWORDS, INTEGRITY_KEYWORDS, PRF_KEYWORDS

    cipher = _keyword("--encr", args.encr, "encryption algorithm", ENCRYPTION_KEYWORDS)
    if cipher.is_aead:
        raise UsageError("--encr: IKEv1 phase 1 has no AEAD ciphers here: use aes128, aes192 or aes256")
    prf = PRF_KEYWORDS["prf" + _keyword("--hash", args.hash, "hash", INTEGRITY_KEYWORDS).name]  # IKEv1's prf is the hash's HMAC
    values = ikev1_kdf.phase1_keys(prf, args.ni, args.nr, args.gxy, args.ckyi, args.ckyr, cipher.key_length,
                                   psk=os.fsencode(args.psk) if args.psk is not None else None, g_xi=args.gxi, g_xr=args.gxr)
    if args.json:
        print(json.dumps({k: v.hex() for k, v in values.items()}, indent=2))
        return 0
    form = "prf(pre-shared key, Ni_b | Nr_b)" if args.psk is not None else "prf(Ni_b | Nr_b, g^xy)"
    print(f"SKEYID   = {form}   with {prf.description}")
    print("SKEYID_d = prf(SKEYID, g^xy | CKY-I | CKY-R | 0)")
    print("SKEYID_a = prf(SKEYID, SKEYID_d | g^xy | CKY-I | CKY-R | 1)")
    print("SKEYID_e = prf(SKEYID, SKEYID_a | g^xy | CKY-I | CKY-R | 2)")
    print(f"Ka       = K1 | K2 | ... with K1 = prf(SKEYID_e, 0), Ki = prf(SKEYID_e, K(i-1)), cut to {cipher.key_length} bytes (RFC 2409 appendix B)")
    if "IV" in values:
        print("IV       = hash(g^xi | g^xr), cut to the cipher's block size")
    for name, value in values.items():
        print(f"{name:8} = {value.hex()}")
    return 0


def _check_readable(path: Path, what: str) -> None:
    try:
        if not path.exists():
            raise UsageError(f"{path}: no such {what}")
        if path.is_dir():
            raise UsageError(f"{path}: is a directory, not a {what}")
        open(path, "rb").close()
    except OSError as e:
        raise UsageError(f"{path}: cannot read the {what}: {e.strerror or e}") from None


def cmd_crack(args) -> int:
    from ikelab.ikev1.crack import crack, from_capture, wordlist

    _check_readable(args.capture, "capture")
    _check_readable(args.wordlist, "wordlist")
    try:
        exchanges = from_capture(args.capture)
    except (OSError, ValueError) as e:
        raise UsageError(f"{args.capture}: {e}") from None
    if not exchanges:
        raise UsageError(f"{args.capture} holds no IKEv1 aggressive-mode exchange with a pre-shared key (messages 1 and 2)")
    status = 1
    for exchange in exchanges:
        if args.psk_crack:
            print(exchange.psk_crack_line())
            status = 0
            continue
        result = crack(exchange, wordlist(args.wordlist))
        if result.psk is None:
            print(f"no match after {result.guesses} guesses ({result.rate:,.0f} guesses/s)")
        else:
            print(f"PSK found: {result.psk.decode(errors='replace')!r} after {result.guesses} guesses "
                  f"in {result.seconds:.3f} s ({result.rate:,.0f} guesses/s)")
            status = 0
    return status


def cmd_run(args) -> int:
    from ikelab.lessons import LessonError, load_lesson

    try:
        lesson = load_lesson(args.lesson)
    except LessonError as e:
        raise UsageError(str(e)) from None
    if not args.headless and not args.json and sys.stdout.isatty():
        return cmd_tui(args.lesson, args.seed, args.transport)
    if args.pcap:
        _check_pcap(args.pcap)
    if args.seed is not None:
        print(SEED_WARNING.format(seed=args.seed), file=sys.stderr)
    choice = _pick_transport(args, lesson)
    transport = choice.name
    if lesson.external and transport != "netns":
        reason = f" ({choice.lab_unavailable})" if choice.lab_unavailable else ""
        raise UsageError(f"{lesson.slug} runs strongSwan on the {lesson.external[0].name} side: it needs the namespace lab{reason}")
    if lesson.manual and args.pcap and transport != "netns":
        raise UsageError(f"{lesson.slug} has no IKE and, without the namespace lab, no ESP either: --pcap would capture nothing")
    if choice.lab_unavailable:
        print(f"ikelab: {_fallback_message(choice, args.ping)}", file=sys.stderr)
        args.ping = 0
    if lesson.compare:
        return _run_compare(args, lesson, transport)
    if transport == "netns":
        return _run_in_lab(args, lesson)
    return _run_plain(args, lesson, transport)


def _run_compare(args, lesson, transport: str) -> int:
    """A lesson that compares protocols: one run each, then the table counted from their traces."""
    from ikelab.lab.compare import protocol_name, run_variant, side_by_side_text
    from ikelab.lab.netns import LabError
    from ikelab.lab.runs import summary
    from ikelab.lab.transports import TransportError

    if args.json or args.pcap or args.ping:
        raise UsageError(f"{lesson.slug} prints a comparison of two runs: --json, --pcap and --ping work with a lesson of one protocol")
    try:
        sessions = [run_variant(variant, transport, args.seed) for variant in lesson.variants()]
    except (LabError, TransportError) as e:
        raise UsageError(f"the run failed: {e}") from None
    print(f"== {lesson.title} ({lesson.slug}), transport {transport}" + (f", seed {args.seed}" if args.seed is not None else ""))
    print(side_by_side_text(sessions))
    for session in sessions:
        print()
        print(f"{protocol_name(session.lesson)}:")
        print(summary(session))
    return 0 if all(s.outcome.success for s in sessions) else 3


def _run_plain(args, lesson, transport_name: str) -> int:
    from ikelab.lab.runs import new_session, plain_transport
    from ikelab.lab.transports import TransportError

    try:
        transport = plain_transport(lesson, transport_name)
    except TransportError as e:
        raise UsageError(str(e)) from None
    try:
        session = new_session(lesson, args.seed, transport=transport)
        session.run()
    finally:
        transport.close()
    _report(args, session, transport.name)
    if args.pcap:
        _export(args.pcap, session, lesson)
    return 0 if session.outcome.success else 3


def _run_in_lab(args, lesson) -> int:
    from ikelab.lab.lab import Lab
    from ikelab.lab.netns import LabError

    try:
        # The capture goes into the run's own directory, which the lab removes with it (and
        # `ikelab lab cleanup` after a kill). The ESP workers start while this process imports the
        # IKE engines: each takes about a third of a second, and a run's first ping reply waits for both.
        with Lab(lesson, capture=bool(args.pcap), prefer_datapath=args.datapath, wait_for_datapath=False) as lab:
            from ikelab.lab.runs import handshake_then_ping, new_session
            import ikelab.lab.session  # noqa: F401 - the engines, imported here while the workers start

            lab.ready()
            session = new_session(lesson, args.seed, lab=lab)
            handshake_then_ping(session, lab, args.ping, None if args.json else _echo_ping)
            _report(args, session, "netns")
            if args.pcap:  # handshake_then_ping has stopped the capture
                _export(args.pcap, session, lesson, lab.capture.path)
    except LabError as e:
        raise UsageError(f"the lab failed: {e}") from None
    return 0 if session.outcome.success else 3


def _report(args, session, transport_name: str) -> None:
    from ikelab.export.transcript import render_counters, render_jsonl, render_text
    from ikelab.lab.runs import summary
    from ikelab.trace import PingEvent

    if args.json:
        print(render_jsonl(session.trace))
        return
    lesson = session.lesson
    print(f"== {lesson.title} ({lesson.slug}), transport {transport_name}" + (f", seed {args.seed}" if args.seed is not None else ""))
    print(render_text(session.trace))
    print()
    print(summary(session))
    pings = session.trace.of(PingEvent)
    if pings:
        print("ESP counters after the ping:")
        print(render_counters(pings[-1].counters))


def _check_pcap(path: Path) -> None:
    """Refuse a --pcap that could not be written before the run starts, not after all its pings."""
    try:
        _check_writable(path)
    except OSError as e:  # a directory on the way we may not look into, a read-only file system, ...
        raise UsageError(f"--pcap {path}: cannot write it: {e.strerror or e}") from None


def _check_writable(path: Path) -> None:
    if path.is_dir():
        raise UsageError(f"--pcap {path}: is a directory")
    if not path.parent.is_dir():
        raise UsageError(f"--pcap {path}: the directory {path.parent} does not exist")
    profile = path.with_suffix(".wireshark")
    if profile == path:
        raise UsageError(f"--pcap {path}: the name .wireshark is for the directory of Wireshark's tables beside the capture")
    # An existing tables directory is one an earlier export made: its files are written again.
    if profile.exists() and not profile.is_dir():
        raise UsageError(f"--pcap {path}: {profile} is in the way (Wireshark's tables go in a directory of that name)")
    if path.exists():
        if not path.is_file():  # a FIFO would block the export until someone reads it; a device is no capture
            raise UsageError(f"--pcap {path}: is not a regular file")
        open(path, "ab").close()  # appends nothing: the file is unchanged
    else:
        open(path, "xb").close()
        path.unlink()


def _export(path: Path, session, lesson, captured: Path | None = None) -> None:
    from ikelab.export.capture import export_capture

    try:
        written = export_capture(path, session.trace, lesson, captured)
    except OSError as e:
        raise UsageError(f"--pcap: cannot write {e.filename or path}: {e.strerror or e}") from None
    print(f"wrote {', '.join(str(p) for p in written)}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
