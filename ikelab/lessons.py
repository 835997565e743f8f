"""Lesson files: TOML documents in `lessons/` that name a scenario and tell its story.

A lesson has a title, two peers `[left]` and `[right]` (one initiates), the narrative for each
step keyed by exchange and message, and checkpoints for the student. Validation reports every
problem as one line naming the file, the key and, where it can be found, the line.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import os
import re
import tomllib
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path

from ikelab.crypto.names import ProposalSpec, UnknownAlgorithm, parse_proposal
from ikelab.effects import ACTIONS, IKEV1_ACTIONS
from ikelab.ikev2.config import Identity
from ikelab.ikev2.fragmentation import DEFAULT_FRAGMENT_SIZE, MIN_FRAGMENT_SIZE
from ikelab.wire.ikev2_constants import IdType

LESSONS_DIR = Path(os.environ.get("IKELAB_LESSONS", Path(__file__).resolve().parent.parent / "lessons"))

# What `compare` may name: ike_version and IKEv1 phase 1 mode of each.
PROTOCOLS = {"ikev2": (2, "main"), "ikev1-main": (1, "main"), "ikev1-aggressive": (1, "aggressive")}

# Traffic only ever goes to documentation addresses (RFC 5737, RFC 3849).
DOCUMENTATION_NETWORKS = [
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
]


# FQDNs are at most 253 characters (RFC 1035 §2.3.4), e-mail addresses 254 (RFC 5321 §4.5.3.1.3);
# an identity far longer would not fit in an ID payload (65535 bytes with its header).
MAX_IDENTITY = 255
MAX_COMMON_NAME = 64  # RFC 5280's ub-common-name; `cryptography` refuses a longer or empty CN
# Each half-open request costs the responder a DH computation and the transcript a couple of hundred
# lines, and the time grows faster than the count: in memory 1000 took 4 to 6 s, 2000 up to 18 s, and
# 10000 ran a minute without ever finishing the handshake.
MAX_FLOOD = 1000
# strongSwan 5.9.8 in the lab took PSKs up to 65000 bytes and refused 65536; far more than a person
# types, so a lesson stays well inside what was tried.
MAX_STRONGSWAN_PSK = 4096
# Runs stay short and bounded: a lifetime below a second rekeys without end (1e-9 s grew a lab run
# to 1.4 GB in 85 s), and every event is a handshake's worth of transcript and capture.
MIN_PERIOD = 1.0  # seconds: rekey_child_after, rekey_ike_after, liveness_every, nat_keepalive_every
MAX_DURATION = 3600.0  # seconds of the run's clock
MAX_EVENTS = 1000  # duration / the shortest period
PERIODS = ("rekey_child_after", "rekey_ike_after", "liveness_every", "nat_keepalive_every")

# A slug names files (the TUI exports ikelab-SLUG.pcapng in the working directory): no path in it.
SLUG = re.compile(r"[a-z0-9][a-z0-9-]*")

# The link between the peers (netns.py): an IPv4 /24 with IPv6 switched off.
LAB_LINK = ipaddress.ip_network("192.0.2.0/24")


class LessonError(ValueError):
    """A lesson file that cannot be used; str() is one line: file:line: key: problem."""

    def __init__(self, path: Path | str, key: str, problem: str, line: int | None = None) -> None:
        self.path, self.key, self.problem, self.line = str(path), key, problem, line
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {key}: {problem}" if key else f"{where}: {problem}")


@dataclass(frozen=True)
class PeerSpec:
    name: str  # "left" or "right"
    role: str  # "initiator" or "responder"
    address: str  # outer address on the link
    local_ts: tuple[str, ...]
    remote_ts: tuple[str, ...]
    protected: str  # the protected host address ping uses
    # IKE settings; absent in a manually keyed lesson
    identity: Identity | None = None
    remote_identity: Identity | None = None
    psk: bytes = b""
    ike: tuple[ProposalSpec, ...] = ()
    esp: tuple[ProposalSpec, ...] = ()
    # lifetimes on the run's clock (seconds); None: never
    rekey_child_after: float | None = None
    rekey_ike_after: float | None = None
    liveness_every: float | None = None
    nat_keepalive_every: float = 20.0  # behind a NAT: a one-byte UDP keepalive this often (RFC 3948 §2.3)
    cookie_threshold: int | None = None
    auth: str = "psk"  # "psk" or "pubkey" (a certificate from the lesson's lab CA)
    encap: bool = False  # pretend to be behind a NAT: IKE on 4500 and ESP in UDP
    port: int = 500  # where an initiator starts IKE: 500, or 4500 (with the non-ESP marker) where 500 is blocked
    implementation: str = "ikelab"  # or "strongswan": charon runs this side in the lab
    certificate: "CertSpec | None" = None
    fragmentation: bool = True  # offer IKE fragmentation (RFC 7383), as strongSwan does by default
    fragment_size: int = DEFAULT_FRAGMENT_SIZE  # largest IP datagram an SKF fragment fills (strongSwan's charon.fragment_size)


@dataclass(frozen=True)
class CertSpec:
    """The certificate a peer gets from the lab CA (or, to break things, from another CA)."""

    key: str = "ecdsa256"
    san: tuple[str, ...] = ()  # DNS names, IP addresses and e-mail addresses
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None
    issuer: str | None = None  # None: the lab CA; another name makes an untrusted CA


@dataclass(frozen=True)
class RouterSpec:
    """A router between the peers: left in 192.0.2.0/25 behind it, right in 192.0.2.128/25."""

    nat: bool = False  # masquerade left's traffic to the router's address on the right
    block_udp_500: bool = False  # an administrator blocks IKE's port 500


@dataclass(frozen=True)
class PkiSpec:
    ca: str = "ikelab Lab CA"
    key: str = "ecdsa256"


@dataclass(frozen=True)
class Action:
    """Something a peer does at a time of the run's clock: "rekey-child", "delete-ike", ..."""

    at: float
    peer: str
    do: str


@dataclass(frozen=True)
class ManualDirection:
    """One direction of a manually keyed tunnel: what both sides must type identically."""

    spi: bytes
    encryption_key: bytes
    integrity_key: bytes


@dataclass(frozen=True)
class ManualKeys:
    esp: ProposalSpec
    left_to_right: ManualDirection
    right_to_left: ManualDirection


@dataclass(frozen=True)
class StepText:
    match: str  # "IKE_SA_INIT request", "IKE_AUTH response", "ping", ...
    text: str


@dataclass(frozen=True)
class Lesson:
    slug: str
    title: str
    summary: str
    path: Path
    ike_version: int
    left: PeerSpec
    right: PeerSpec
    steps: tuple[StepText, ...] = ()
    checkpoints: tuple[str, ...] = ()
    manual: ManualKeys | None = None  # static SAs, no IKE at all
    duration: float = 0.0  # seconds of the run's clock after the start that timers and actions may use
    actions: tuple[Action, ...] = ()
    flood: int = 0  # half-open IKE_SA_INIT requests sent before the real initiator starts
    pki: PkiSpec = PkiSpec()
    mode: str = "main"  # IKEv1 phase 1: "main" or "aggressive"
    router: "RouterSpec | None" = None  # a third namespace between the peers
    compare: tuple[str, ...] = ()  # two protocols of PROTOCOLS run side by side, in this order

    def variants(self) -> tuple["Lesson", ...]:
        """A comparison lesson as one lesson per protocol it runs, sharing peers and story."""
        return tuple(replace(self, slug=f"{self.slug}.{name}", ike_version=PROTOCOLS[name][0], mode=PROTOCOLS[name][1], compare=())
                     for name in self.compare)

    @property
    def external(self) -> list[PeerSpec]:
        """Sides run by another implementation (strongSwan), not by ikelab."""
        return [p for p in self.peers if p.implementation == "strongswan"]

    @property
    def keying(self) -> str:
        return "manual" if self.manual else "ike"

    @property
    def peers(self) -> tuple[PeerSpec, PeerSpec]:
        return (self.left, self.right)

    @property
    def initiator(self) -> PeerSpec:
        return self.left if self.left.role == "initiator" else self.right

    @property
    def responder(self) -> PeerSpec:
        return self.right if self.left.role == "initiator" else self.left

    def narrative(self, match: str) -> str:
        return "\n\n".join(s.text for s in self.steps if s.match == match)


def find_lesson(name: str) -> Path:
    """A slug from lessons/ or a path to a lesson file."""
    candidate = Path(name)
    if candidate.suffix == ".toml" or os.sep in name:
        _refuse_directory(candidate)
        if not candidate.is_file():  # a FIFO would block the read, a device is no lesson
            raise LessonError(name, "", "is not a regular file" if candidate.exists() else "no such lesson file")
        return candidate
    path = LESSONS_DIR / f"{name}.toml"
    if path.exists() and not path.is_file():
        raise LessonError(path, "", "is not a regular file")
    if not path.is_file():
        _refuse_directory(candidate)
        known = ", ".join(p.stem for p in sorted(_lesson_files())) or "none"
        raise LessonError(name, "", f"no lesson with this slug (known: {known})")
    return path


def _refuse_directory(path: Path) -> None:
    if path.is_dir():
        raise LessonError(path, "", "is a directory, not a lesson file")


def _lesson_files() -> list[Path]:
    if not LESSONS_DIR.is_dir():
        raise LessonError(LESSONS_DIR, "", "no such lessons directory (set by IKELAB_LESSONS)"
                          if "IKELAB_LESSONS" in os.environ else "no such lessons directory")
    return sorted(LESSONS_DIR.glob("*.toml"))


def list_lessons(problems: list[LessonError] | None = None) -> list[Lesson]:
    """Every lesson in the lessons directory. A file that is no valid lesson raises, or, given a
    `problems` list, goes there while the others are still listed."""
    lessons = []
    for path in _lesson_files():
        try:
            lessons.append(load_lesson(path))
        except LessonError as e:
            if problems is None:
                raise
            problems.append(e)
    return lessons


def load_lesson(name: str | Path) -> Lesson:
    path = find_lesson(str(name))
    text = _read_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        line = re.search(r"line (\d+)", str(e))
        raise LessonError(path, "", f"not valid TOML: {e}", int(line.group(1)) if line else None) from None
    except RecursionError:  # tomllib parses nested arrays and inline tables recursively
        raise LessonError(path, "", "not valid TOML: arrays or tables nested too deeply") from None
    return _Parser(path, text).lesson(data)


def _read_text(path: Path) -> str:
    """The file as text; a UTF-8 byte-order mark, which editors on Windows add, is dropped."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise LessonError(path, "", f"cannot read the file: {e.strerror or e}") from None
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise LessonError(path, "", f"not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start}): "
                          "TOML files are UTF-8", line) from None


class _Parser:
    def __init__(self, path: Path, text: str) -> None:
        self.path, self.lines = path, text.splitlines()

    def error(self, key: str, problem: str) -> LessonError:
        return LessonError(self.path, key, problem, self._line_of(key))

    def _line_of(self, key: str) -> int | None:
        line = self._line_setting(key)
        if line is None and key.count(".") >= 2:  # inside an inline table: `certificate = { key = ... }`
            line = self._line_setting(key.rpartition(".")[0])
        return line

    def _line_setting(self, key: str) -> int | None:
        """The line that sets `key` ("left.psk" -> the `psk =` line after `[left]`)."""
        *tables, leaf = key.split(".")
        table = ".".join(tables)
        current = ""
        for number, line in enumerate(self.lines, start=1):
            stripped = line.strip()
            header = re.match(r"\[+([^\]]+)\]+", stripped)
            if header:
                current = header.group(1).strip()
                if current == key:
                    return number
            elif current == table and re.match(rf"{re.escape(leaf)}\s*=", stripped):
                return number
        return None

    def _refuse_unknown(self, table: dict, known: set[str], where: str, hint: str = "") -> None:
        for key in table:
            if key not in known:
                raise self.error(where + key, f"unknown setting{hint} (known: {', '.join(sorted(known))})")

    def _str(self, table: dict, key: str, where: str, default: str | None = None) -> str:
        value = table.get(key, default)
        if value is None:
            raise self.error(f"{where}{key}", "missing")
        if not isinstance(value, str):
            raise self.error(f"{where}{key}", f"must be a string, not {type(value).__name__}")
        return self._text(value, f"{where}{key}")

    def _text(self, value: str, key: str) -> str:
        """`value`, unless it holds a control character other than newline and tab: texts reach
        the terminal, where an escape character could restyle or rewrite it."""
        control = next((c for c in value if unicodedata.category(c) == "Cc" and c not in "\n\t"), None)
        if control is not None:
            raise self.error(key, f"holds the control character U+{ord(control):04X}; write text only")
        return value

    def _str_list(self, table: dict, key: str, where: str) -> list[str]:
        value = table.get(key)
        if value is None:
            raise self.error(f"{where}{key}", "missing")
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise self.error(f"{where}{key}", "must be a string or a non-empty list of strings")
        return value

    def _documentation(self, key: str, text: str, *, network: bool) -> str:
        if "%" in text:  # Python accepts "2001:db8::1%eth0"; the part after % names a host's interface
            raise self.error(key, f"{text!r} has a scope id (after %): a lesson's addresses belong to no interface")
        try:
            value = ipaddress.ip_network(text, strict=False) if network else ipaddress.ip_address(text)
        except ValueError:
            raise self.error(key, f"{text!r} is not an IP {'network' if network else 'address'}") from None
        if not any(value.version == d.version and _inside(value, d) for d in DOCUMENTATION_NETWORKS):
            raise self.error(
                key,
                f"{text} is outside the documentation ranges ikelab may use "
                "(192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32)",
            )
        return text

    def _link_address(self, key: str, text: str) -> str:
        self._documentation(key, text, network=False)
        address = ipaddress.ip_address(text)
        if address not in LAB_LINK or address in (LAB_LINK.network_address, LAB_LINK.broadcast_address):
            raise self.error(key, f"{text} is not a host address on the lab's link {LAB_LINK} (192.0.2.1 to 192.0.2.254)")
        return text

    def _traffic_selector(self, key: str, text: str) -> str:
        """A protected network, never the lab link: IKE itself (between the outer addresses) would
        then match the policy and vanish into the tunnel it is trying to set up."""
        self._documentation(key, text, network=True)
        if ipaddress.ip_network(text, strict=False).overlaps(LAB_LINK):
            raise self.error(key, f"{text} overlaps the lab's link {LAB_LINK}, where the outer addresses live: "
                             "IKE would be sent into the tunnel (use 198.51.100.0/24, 203.0.113.0/24 or 2001:db8::/32)")
        return text

    def _check_protected(self, key: str, text: str, local_ts: tuple[str, ...]) -> None:
        """ping goes from this address through the tunnel: only a packet inside local_ts enters it."""
        protected = ipaddress.ip_address(text)
        networks = [ipaddress.ip_network(n, strict=False) for n in local_ts]
        if not any(protected.version == n.version and protected in n for n in networks):
            raise self.error(key, f"{text} is outside this side's local_ts ({', '.join(local_ts)}), so ping would not use the tunnel")
        for network in networks:
            if protected.version == network.version and network.num_addresses > 2 and protected in (
                    network.network_address, network.broadcast_address):
                raise self.error(key, f"{text} is the {'network' if protected == network.network_address else 'broadcast'} "
                                 f"address of {network}, not a host")

    def _proposals(self, table: dict, key: str, where: str, *, ike: bool) -> tuple[ProposalSpec, ...]:
        out = []
        for text in self._str_list(table, key, where):
            try:
                spec = parse_proposal(text, ike=ike)
            except (UnknownAlgorithm, ValueError) as e:
                raise self.error(f"{where}{key}", str(e).strip("'\"")) from None
            if True in spec.esn:  # esp/packet.py refuses such an SA, so the lab could never ping
                raise self.error(f"{where}{key}", f"{text!r} allows extended sequence numbers (esn), which the lab's "
                                 "userspace ESP datapath does not implement: leave esn out")
            out.append(spec)
        return tuple(out)

    def _identity(self, key: str, text: str) -> Identity:
        if len(text) > MAX_IDENTITY:
            raise self.error(key, f"must be at most {MAX_IDENTITY} characters, not {len(text)}")
        try:
            identity = Identity.parse(text)
        except ValueError as e:
            raise self.error(key, str(e)) from None
        if identity.id_type in (IdType.ID_IPV4_ADDR, IdType.ID_IPV6_ADDR):  # an address, even as a name: documentation ranges only
            self._documentation(key, text, network=False)
        if identity.id_type in (IdType.ID_FQDN, IdType.ID_RFC822_ADDR):
            self._ascii_name(key, text)
        return identity

    def _ascii_name(self, key: str, text: str) -> None:
        """IKE's ID_FQDN and ID_RFC822_ADDR (RFC 7296 §3.5) and X.509's DNS and e-mail names are ASCII:
        an internationalized domain goes in its A-label form (xn--...)."""
        if text.isascii():
            return
        local, at, domain = text.rpartition("@")
        try:
            suggestion = local + at + domain.encode("idna").decode()
        except UnicodeError:
            suggestion = ""
        hint = f": write {suggestion!r}" if suggestion.isascii() and suggestion else ""
        raise self.error(key, f"{text!r} is not ASCII; IKE and X.509 names are, with a domain in its A-label form (xn--...){hint}")

    def _certified_identity(self, key: str, identity: Identity) -> Identity:
        """The lab CA names the certificate after the identity (credentials.py): it must fit in a CN."""
        name = identity.text.lstrip("@")
        if identity.id_type != IdType.ID_DER_ASN1_DN and len(name) > MAX_COMMON_NAME:
            raise self.error(key, f"with auth = \"pubkey\" the identity is the certificate's common name, "
                             f"at most {MAX_COMMON_NAME} characters (RFC 5280), not {len(name)}")
        return identity

    def peer(self, data: dict, name: str, *, manual: bool) -> PeerSpec:
        table = data.get(name)
        if name in data and not isinstance(table, dict):
            raise self.error(name, f"must be a table [{name}] describing the {name} peer, not {type(table).__name__}")
        if not isinstance(table, dict):
            raise self.error(name, f"missing table [{name}] describing the {name} peer")
        w = f"{name}."
        known = {"role", "address", "local_ts", "remote_ts", "protected"}
        if not manual:
            known |= {"id", "remote_id", "psk", "ike", "esp", "rekey_child_after", "rekey_ike_after", "liveness_every",
                      "nat_keepalive_every", "cookie_threshold", "auth", "certificate", "encap", "implementation", "port",
                      "fragmentation", "fragment_size"}
        self._refuse_unknown(table, known, w, " (a manually keyed lesson has no IKE settings)" if manual else "")
        role = self._str(table, "role", w)
        if role not in ("initiator", "responder"):
            raise self.error(w + "role", f"must be 'initiator' or 'responder', not {role!r}")
        common = dict(
            name=name,
            role=role,
            address=self._link_address(w + "address", self._str(table, "address", w)),
            local_ts=tuple(self._traffic_selector(w + "local_ts", n) for n in self._str_list(table, "local_ts", w)),
            remote_ts=tuple(self._traffic_selector(w + "remote_ts", n) for n in self._str_list(table, "remote_ts", w)),
            protected=self._documentation(w + "protected", self._str(table, "protected", w), network=False),
        )
        # local_ts stays off the lab link (_traffic_selector), so protected is never an outer address.
        self._check_protected(w + "protected", common["protected"], common["local_ts"])
        if manual:
            return PeerSpec(**common)
        remote_id = table.get("remote_id")
        auth = self._str(table, "auth", w, default="psk")
        if auth not in ("psk", "pubkey"):
            raise self.error(w + "auth", f"must be 'psk' or 'pubkey', not {auth!r}")
        identity = self._identity(w + "id", self._str(table, "id", w))
        implementation = self._implementation(table, w, auth)  # before the periods: its whole seconds are the finer complaint
        return PeerSpec(
            **common,
            identity=self._certified_identity(w + "id", identity) if auth == "pubkey" else identity,
            remote_identity=self._identity(w + "remote_id", self._str(table, "remote_id", w)) if remote_id is not None else None,
            psk=self._psk(table, w) if auth == "psk" else b"",
            auth=auth,
            certificate=self._certificate(table, w) if auth == "pubkey" else None,
            ike=self._proposals(table, "ike", w, ike=True),
            esp=self._proposals(table, "esp", w, ike=False),
            rekey_child_after=self._period(table, "rekey_child_after", w),
            rekey_ike_after=self._period(table, "rekey_ike_after", w),
            liveness_every=self._period(table, "liveness_every", w),
            nat_keepalive_every=self._period(table, "nat_keepalive_every", w) or 20.0,
            cookie_threshold=self._count(table, "cookie_threshold", w),
            encap=self._bool(table, "encap", w),
            port=self._port(table, w),
            implementation=implementation,
            fragmentation=self._bool(table, "fragmentation", w) if "fragmentation" in table else True,
            fragment_size=self._fragment_size(table, w),
        )

    def _check_ikev1_proposals(self, peer: PeerSpec) -> None:
        """The IKE proposals must give IKEv1 phase 1 something to offer (what the engine offers, which leaves
        out AEAD ciphers: RFC 5282 is not implemented); with nothing the run fails at once."""
        from ikelab.ikev1.proposals import phase1_offer

        if not phase1_offer(peer.ike, lifetime=0).proposals[0].transforms:
            raise self.error(f"{peer.name}.ike", f"no proposal of {', '.join(s.keywords() for s in peer.ike)} can be offered "
                             "in IKEv1: phase 1 needs AES-CBC with a hash (no AEAD such as GCM)")

    def _psk(self, table: dict, where: str) -> bytes:
        psk = self._str(table, "psk", where).encode()
        if not psk:
            raise self.error(where + "psk", "must not be empty: a pre-shared key needs secret entropy (RFC 7296 §2.15), "
                             "and strongSwan refuses an empty one")
        if table.get("implementation") == "strongswan" and len(psk) > MAX_STRONGSWAN_PSK:
            raise self.error(where + "psk", f"strongSwan's side takes a PSK of at most {MAX_STRONGSWAN_PSK} bytes here, not {len(psk)}")
        return psk

    def _certificate(self, table: dict, where: str) -> CertSpec:
        from ikelab.pki.keys import KEY_TYPES

        spec = table.get("certificate", {})
        w = where + "certificate."
        if not isinstance(spec, dict):
            raise self.error(where + "certificate", "must be a table such as { key = \"ecdsa256\", san = [\"a.example\"] }")
        unknown = set(spec) - {"key", "san", "not_before", "not_after", "issuer"}
        if unknown:
            raise self.error(w + sorted(unknown)[0], "unknown setting (known: key, san, not_before, not_after, issuer)")
        key = self._str(spec, "key", w, default="ecdsa256")
        if key not in KEY_TYPES:
            raise self.error(w + "key", f"unknown key type {key!r} (known: {', '.join(KEY_TYPES)})")
        san = spec.get("san", [])
        if isinstance(san, str):
            san = [san]
        if not isinstance(san, list) or not all(isinstance(v, str) for v in san):
            raise self.error(w + "san", "must be a list of DNS names, IP addresses or e-mail addresses")
        for name in san:
            self._ascii_name(w + "san", name)
        times = {name: self._certificate_time(spec, name, w) for name in ("not_before", "not_after")}
        if None not in times.values() and times["not_after"] <= times["not_before"]:
            raise self.error(w + "not_after", f"must be later than not_before ({times['not_before']:%Y-%m-%dT%H:%M:%SZ})")
        issuer = self._common_name(spec, "issuer", w, None) if "issuer" in spec else None
        return CertSpec(key, tuple(san), times["not_before"], times["not_after"], issuer)

    def _certificate_time(self, spec: dict, name: str, where: str) -> dt.datetime | None:
        value = spec.get(name)
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            raise self.error(where + name, "must be a TOML date-time such as 2026-01-01T00:00:00Z")
        try:
            value = value.replace(tzinfo=value.tzinfo or dt.timezone.utc).astimezone(dt.timezone.utc)
        except OverflowError:  # 9999-12-31T23:00:00-05:00 is in the year 10000 in UTC
            value = None
        from ikelab.pki.ca import EARLIEST, LATEST

        # X.509 writes validity as UTCTime (1950 to 2049) or GeneralizedTime (RFC 5280 §4.1.2.5), and
        # `cryptography` refuses anything before 1950. The period must fit inside: it cannot end at
        # the range's first second or start at its last.
        no_room = EARLIEST if name == "not_after" else LATEST
        if value is None or not EARLIEST <= value <= LATEST or value == no_room:
            raise self.error(where + name, f"must be from 1950-01-01 to 9999-12-31 (UTC), not {spec[name]}")
        return value

    def _common_name(self, table: dict, key: str, where: str, default: str | None) -> str:
        """A CA's name, which becomes its certificate's CN: RFC 5280's ub-common-name is 64 characters."""
        value = self._str(table, key, where, default=default)
        if not 1 <= len(value) <= MAX_COMMON_NAME:
            raise self.error(where + key, f"must be 1 to {MAX_COMMON_NAME} characters (an X.509 common name), not {len(value)}")
        return value

    def pki(self, data: dict) -> PkiSpec:
        from ikelab.pki.keys import KEY_TYPES

        table = data.get("pki", {})
        if not isinstance(table, dict) or set(table) - {"ca", "key"}:
            raise self.error("pki", "a [pki] table takes `ca` (the lab CA's name) and `key` (its key type)")
        key = self._str(table, "key", "pki.", default="ecdsa256")
        if key not in KEY_TYPES:
            raise self.error("pki.key", f"unknown key type {key!r} (known: {', '.join(KEY_TYPES)})")
        return PkiSpec(self._common_name(table, "ca", "pki.", default="ikelab Lab CA"), key)

    def _implementation(self, table: dict, where: str, auth: str) -> str:
        value = self._str(table, "implementation", where, default="ikelab")
        if value not in ("ikelab", "strongswan"):
            raise self.error(where + "implementation", f"must be 'ikelab' or 'strongswan', not {value!r}")
        if value == "strongswan":
            # charon counts these in whole seconds (rekey_time and dpd_delay in swanctl.conf, keep_alive
            # in strongswan.conf).
            for key in ("rekey_child_after", "rekey_ike_after", "nat_keepalive_every", "liveness_every"):
                seconds = table.get(key)
                if isinstance(seconds, float) and math.isfinite(seconds) and not seconds.is_integer():  # _period checks the rest
                    raise self.error(where + key, f"strongSwan takes whole seconds here, not {seconds!r}")
        return value

    def _fragment_size(self, table: dict, where: str) -> int:
        value = table.get("fragment_size", DEFAULT_FRAGMENT_SIZE)
        # Below 576 (the IPv4 minimum) a certificate IKE_AUTH would need dozens of fragments.
        if isinstance(value, bool) or not isinstance(value, int) or not MIN_FRAGMENT_SIZE <= value <= 65535:
            raise self.error(where + "fragment_size", f"must be an IP datagram size from {MIN_FRAGMENT_SIZE} to 65535 bytes, not {value!r}")
        return value

    def _port(self, table: dict, where: str) -> int:
        value = table.get("port", 500)
        if not _whole(value) or value not in (500, 4500):
            raise self.error(where + "port", f"IKE runs on port 500 or 4500, not {value!r}")
        return value

    def router(self, data: dict) -> RouterSpec | None:
        table = data.get("router")
        if table is None:
            return None
        if not isinstance(table, dict) or set(table) - {"nat", "block"}:
            raise self.error("router", "a [router] table takes `nat` (true/false) and `block` (e.g. [\"udp/500\"])")
        block = table.get("block", [])
        if not isinstance(block, list) or set(block) - {"udp/500"}:
            raise self.error("router.block", f"the router can block [\"udp/500\"], not {block!r}")
        return RouterSpec(nat=self._bool(table, "nat", "router."), block_udp_500="udp/500" in block)

    def _array_of_tables(self, data: dict, key: str) -> list:
        value = data.get(key, [])
        if not isinstance(value, list):
            raise self.error(key, f"must be [[{key}]] tables, not {type(value).__name__}")
        return value

    def _bool(self, table: dict, key: str, where: str) -> bool:
        value = table.get(key, False)
        if not isinstance(value, bool):
            raise self.error(where + key, f"must be true or false, not {value!r}")
        return value

    def _count(self, table: dict, key: str, where: str, maximum: int = 10000) -> int | None:
        value = table.get(key)
        if value is None:
            return None
        if not _whole(value) or not 0 <= value <= maximum:
            raise self.error(where + key, f"must be a whole number from 0 to {maximum}, not {value!r}")
        return value

    def _seconds(self, table: dict, key: str, where: str) -> float | None:
        value = table.get(key)
        if value is None:
            return None
        # inf and nan are TOML floats too; a clock never reaches them, and swanctl needs a whole number.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
            raise self.error(where + key, f"must be a positive number of seconds, not {value!r}")
        return float(value)

    def _period(self, table: dict, key: str, where: str) -> float | None:
        value = self._seconds(table, key, where)
        if value is not None and value < MIN_PERIOD:
            raise self.error(where + key, f"must be at least {MIN_PERIOD:g} second, not {value!r}")
        return value

    def duration(self, data: dict, peers: tuple[PeerSpec, PeerSpec]) -> float:
        value = self._seconds(data, "duration", "") or 0.0
        if value > MAX_DURATION:
            raise self.error("duration", f"must be at most {MAX_DURATION:g} seconds, not {value!r}")
        for peer in peers:
            for key in PERIODS:
                period = getattr(peer, key)
                if key in data[peer.name] and value / period > MAX_EVENTS:
                    raise self.error("duration", f"{value:g} s with {peer.name}.{key} = {period:g} s makes "
                                     f"{value / period:.0f} events; at most {MAX_EVENTS} (a longer period or a shorter duration)")
        return value

    def actions(self, data: dict) -> tuple[Action, ...]:
        out = []
        for i, a in enumerate(self._array_of_tables(data, "action")):
            if not isinstance(a, dict) or set(a) != {"at", "peer", "do"}:
                raise self.error("action", f"action {i + 1} needs exactly `at`, `peer` and `do`")
            at = self._seconds(a, "at", "action.")
            if a["peer"] not in ("left", "right"):
                raise self.error("action.peer", f"must be 'left' or 'right', not {a['peer']!r}")
            if a["do"] not in ACTIONS:
                raise self.error("action.do", f"unknown action {a['do']!r} (known: {', '.join(ACTIONS)})")
            out.append(Action(at, a["peer"], a["do"]))
        return tuple(out)

    def _hex(self, table: dict, key: str, where: str, length: int) -> bytes:
        text = self._str(table, key, where)
        try:
            value = bytes.fromhex(text.lower().removeprefix("0x").replace(":", "").replace(" ", ""))
        except ValueError:
            raise self.error(where + key, f"{text!r} is not hexadecimal") from None
        if len(value) != length:
            raise self.error(where + key, f"must be {length} bytes ({2 * length} hex digits), not {len(value)}")
        return value

    def manual(self, data: dict) -> ManualKeys:
        table = data.get("manual")
        if not isinstance(table, dict):
            raise self.error("manual", "a lesson with keying = \"manual\" needs a [manual] table with esp and both directions' keys")
        self._refuse_unknown(table, {"esp", "left_to_right", "right_to_left"}, "manual.")
        specs = self._proposals(table, "esp", "manual.", ike=False)
        if len(specs) != 1:  # nothing negotiates: both sides use the one given
            raise self.error("manual.esp", f"manual keying takes exactly one ESP proposal, not {len(specs)}")
        spec = specs[0]
        if spec.dh:
            raise self.error("manual.esp", "manual keying has no Diffie-Hellman: remove the DH group")
        cipher, integ = spec.encryption[0], spec.integrity[0] if spec.integrity else None
        directions = {}
        for key in ("left_to_right", "right_to_left"):
            d = table.get(key)
            w = f"manual.{key}."
            if not isinstance(d, dict):
                raise self.error(f"manual.{key}", "missing table with spi, encryption_key and integrity_key")
            self._refuse_unknown(d, {"spi", "encryption_key", "integrity_key"}, w)
            spi = self._hex(d, "spi", w, 4)
            if int.from_bytes(spi, "big") < 256:
                raise self.error(w + "spi", "SPIs 0 to 255 are reserved (RFC 4303 §2.1)")
            directions[key] = ManualDirection(
                spi=spi,
                encryption_key=self._hex(d, "encryption_key", w, cipher.key_length),
                integrity_key=self._hex(d, "integrity_key", w, integ.key_length) if integ else b"",
            )
        if directions["left_to_right"].spi == directions["right_to_left"].spi:
            raise self.error("manual.right_to_left.spi", "each direction needs its own SPI")
        return ManualKeys(spec, directions["left_to_right"], directions["right_to_left"])

    def lesson(self, data: dict) -> Lesson:
        known = {"title", "slug", "summary", "ike_version", "keying", "left", "right", "manual", "step", "checkpoint",
                 "duration", "action", "flood", "pki", "mode", "router", "compare"}
        self._refuse_unknown(data, known, "")
        keying = data.get("keying", "ike")
        if keying not in ("ike", "manual"):
            raise self.error("keying", f"must be 'ike' or 'manual', not {keying!r}")
        manual = keying == "manual"
        version = data.get("ike_version", 2)
        if not _whole(version) or version not in (1, 2):
            raise self.error("ike_version", f"must be 1 or 2, not {version!r}")
        mode = self._str(data, "mode", "", default="main")
        if mode not in ("main", "aggressive"):
            raise self.error("mode", f"IKEv1 phase 1 mode must be 'main' or 'aggressive', not {mode!r}")
        if "mode" in data and version != 1:
            raise self.error("mode", "only IKEv1 (ike_version = 1) has phase 1 modes")
        left, right = self.peer(data, "left", manual=manual), self.peer(data, "right", manual=manual)
        if {left.role, right.role} != {"initiator", "responder"}:
            raise self.error("right.role", "one peer must be the initiator and the other the responder")
        if left.address == right.address:
            raise self.error("right.address", "the two peers need different addresses")
        for peer, other in ((left, right), (right, left)):
            if ipaddress.ip_address(peer.protected) == ipaddress.ip_address(other.protected):
                raise self.error(f"{peer.name}.protected", f"{peer.protected} is the {other.name} peer's protected address too; "
                                 "each protected host needs an address of its own")
        compare = self.compare(data)
        ikev1 = 1 in ({PROTOCOLS[name][0] for name in compare} if compare else {version})
        if ikev1 and not manual:
            for peer in (left, right):
                self._check_ikev1_proposals(peer)
        if left.implementation == right.implementation == "strongswan":
            raise self.error("right.implementation", "at least one side must be ikelab")
        router = self.router(data)
        if router is not None:
            for peer, half in ((left, "192.0.2.0/25"), (right, "192.0.2.128/25")):
                address = ipaddress.ip_address(peer.address)
                if address not in ipaddress.ip_network(half) or str(address) in ("192.0.2.126", "192.0.2.129"):
                    raise self.error(f"{peer.name}.address", f"behind the router the {peer.name} peer needs an address in "
                                     f"{half} other than the router's (192.0.2.126 and 192.0.2.129)")
        duration = self.duration(data, (left, right))
        actions = self.actions(data)
        for action in actions:
            # Without a duration a live run (--ping) still follows the wall clock; with one, that is the end.
            if "duration" in data and action.at > duration:
                raise self.error("action.at", f"{action.at:g} is after the run's end (duration = {duration:g}), "
                                 "so the action would never run")
        for action in actions:
            if ikev1 and action.do not in IKEV1_ACTIONS:
                raise self.error("action.do", f"IKEv1 cannot {action.do!r}: it has no rekey exchange "
                                 f"(IKEv1 actions: {', '.join(IKEV1_ACTIONS)})")
            if action.do == "liveness" and (left if action.peer == "left" else right).implementation == "strongswan":
                raise self.error("action.do", "swanctl has no command that makes strongSwan check liveness; "
                                 "give that action to the ikelab side")
        steps = []
        for i, step in enumerate(self._array_of_tables(data, "step")):
            if not isinstance(step, dict) or not isinstance(step.get("match"), str) or not isinstance(step.get("text"), str):
                raise self.error("step", f"step {i + 1} needs `match` and `text` strings")
            self._refuse_unknown(step, {"match", "text"}, "step.")
            steps.append(StepText(step["match"], self._text(step["text"], "step.text").strip()))
        checkpoints = []
        for i, cp in enumerate(self._array_of_tables(data, "checkpoint")):
            if not isinstance(cp, dict) or not isinstance(cp.get("text"), str):
                raise self.error("checkpoint", f"checkpoint {i + 1} needs a `text` string")
            self._refuse_unknown(cp, {"text"}, "checkpoint.")
            checkpoints.append(self._text(cp["text"], "checkpoint.text").strip())
        title = self._str(data, "title", "")
        if "\n" in title:
            raise self.error("title", "must be one line (the summary takes paragraphs)")
        if not title.strip():
            raise self.error("title", "must not be empty: `ikelab lessons` lists lessons by title")
        return Lesson(
            slug=self.slug(data),
            title=title,
            summary=self._str(data, "summary", "", default="").strip(),
            path=self.path,
            ike_version=version,
            left=left,
            right=right,
            steps=tuple(steps),
            checkpoints=tuple(checkpoints),
            manual=self.manual(data) if manual else None,
            duration=duration,
            actions=actions,
            flood=self._count(data, "flood", "", maximum=MAX_FLOOD) or 0,
            pki=self.pki(data),
            mode=mode,
            router=router,
            compare=compare,
        )

    def slug(self, data: dict) -> str:
        """`slug`, or the file name, which is one path component already."""
        if "slug" not in data:
            return self.path.stem
        value = self._str(data, "slug", "")
        if not SLUG.fullmatch(value):
            raise self.error("slug", f"must be lowercase letters, digits and dashes, starting with a letter or digit "
                             f"(it names files), not {value!r}")
        return value

    def compare(self, data: dict) -> tuple[str, ...]:
        """`compare = ["ikev1-main", "ikev2"]`: the same peers run once per protocol, side by side."""
        value = data.get("compare")
        if value is None:
            return ()
        known = ", ".join(PROTOCOLS)
        if not isinstance(value, list) or len(value) != 2 or not all(isinstance(v, str) for v in value):
            raise self.error("compare", f'must name two protocols, e.g. ["ikev1-main", "ikev2"] (known: {known})')
        for name in value:
            if name not in PROTOCOLS:
                raise self.error("compare", f"unknown protocol {name!r} (known: {known})")
        if value[0] == value[1]:
            raise self.error("compare", "name two different protocols")
        for key in ("ike_version", "mode", "keying"):
            if key in data:
                raise self.error(key, "a lesson that compares protocols takes them from `compare` alone")
        for side in ("left", "right"):
            if data[side].get("implementation", "ikelab") != "ikelab":
                raise self.error(f"{side}.implementation", "a comparison runs ikelab on both sides")
        return tuple(value)


def _whole(value) -> bool:
    """An integer: TOML's true and false are Python ints (True == 1), and 2.0 == 2."""
    return isinstance(value, int) and not isinstance(value, bool)


def _inside(value, network) -> bool:
    if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return value.subnet_of(network)
    return value in network
