"""The readable transcript of a run: every event of the trace, in order, as text."""

from __future__ import annotations

import json
import textwrap
from typing import Iterable

from ikelab.trace import (
    AuthEvent,
    CertificateEvent,
    ChildSaEvent,
    CommandEvent,
    DhKeyPairEvent,
    DhSharedEvent,
    Event,
    IkeKeysEvent,
    IkeSaEvent,
    Ikev1HashEvent,
    Ikev1IvEvent,
    Ikev1KeysEvent,
    Ikev1MessageEvent,
    MessageEvent,
    NoteEvent,
    PingEvent,
    PrfEvent,
    PrfPlusEvent,
    ProposalEvent,
    TrafficSelectorEvent,
)
from ikelab.wire.fields import Field

INDENT = "    "


def hexblock(data: bytes, indent: str = INDENT * 2, width: int = 64) -> str:
    text = data.hex()
    return "\n".join(indent + text[i : i + width] for i in range(0, len(text), width)) or indent + "(empty)"


def _value(label: str, data: bytes) -> str:
    return f"{INDENT}{label} ({len(data)} bytes):\n{hexblock(data)}"


def _tree(fields: Iterable[Field], depth: int = 1) -> list[str]:
    lines = []
    for f in fields:
        shown = f": {f.display}" if f.display else ""
        lines.append(f"{INDENT * depth}{f.name}{shown}  [{f.start}:{f.end}]")
        lines += _tree(f.children, depth + 1)
    return lines


def render_event(e: Event) -> str:
    who = f"[{e.peer:>5} {e.time * 1000:8.1f} ms]"
    if isinstance(e, MessageEvent):
        arrow = {"sent": "sends", "received": "receives", "retransmitted": "retransmits"}[e.direction]
        if isinstance(e, Ikev1MessageEvent):
            name = e.label
        else:
            name = f"{e.exchange} {'response' if e.is_response else 'request'} #{e.message_id}"
        head = f"{who} {arrow} {name} {e.src} -> {e.dst} ({len(e.data)} bytes)\n{INDENT}{e.summary}"
        if e.direction != "received" or not e.tree:
            return head + f"\n{INDENT}protection: {e.protection}"
        body = _tree(e.tree.children)
        if e.inner_tree:
            body.append(f"{INDENT}decrypted SK contents:")
            body += _tree(e.inner_tree, 2)
        return head + "\n" + "\n".join(body)
    if isinstance(e, DhKeyPairEvent):
        return f"{who} Diffie-Hellman {e.group_name} (group {e.group}) key pair\n" + _value("private", e.private) + "\n" + _value("public (KE data)", e.public)
    if isinstance(e, DhSharedEvent):
        return f"{who} Diffie-Hellman shared secret g^ir from the peer's public value\n" + _value("peer public", e.peer_public) + "\n" + _value("g^ir", e.shared)
    if isinstance(e, PrfEvent):
        return f"{who} {e.formula}   [{e.prf}]\n" + _value("key", e.key) + "\n" + _value("data", e.data) + "\n" + _value(e.label, e.output)
    if isinstance(e, PrfPlusEvent):
        lines = [f"{who} {e.label}: {e.formula}   [{e.prf}]", _value("K", e.key), _value("S", e.seed)]
        for b in e.blocks:
            if e.formula.startswith("{SK_d") or e.formula.startswith("KEYMAT = prf+"):  # IKEv2's prf+
                lines.append(f"{INDENT}T{b['index']} = prf(K, " + ("T%d | " % (b["index"] - 1) if b["index"] > 1 else "") + f"S | 0x{b['index']:02x}) = {b['output'].hex()}")
            else:  # IKEv1's expansions: each block's input as the peer hashed it
                lines.append(f"{INDENT}block {b['index']}: prf(K, {b['input'].hex()}) = {b['output'].hex()}")
        lines += [_value(name, value) for name, value in e.split.items()]
        return "\n".join(lines)
    if isinstance(e, IkeKeysEvent):
        return f"{who} IKE SA {e.spi_i.hex()}_i {e.spi_r.hex()}_r keyed: {e.cipher}" + (f"-{e.integrity}" if e.integrity else "") + f"-{e.prf}"
    if isinstance(e, AuthEvent):
        signature = not e.auth_key
        if e.action == "computed":
            head = f"{who} computes its AUTH ({e.of_role}, {e.method})"
        else:
            head = f"{who} verifies the {e.of_role}'s AUTH ({e.method}): " + ("OK" if e.ok else "MISMATCH")
        formula = (
            f"AUTH = signature over (message | nonce | prf({e.sk_p_label}, ID'))"
            if signature
            else f"AUTH = prf(prf(PSK, \"Key Pad for IKEv2\"), message | nonce | prf({e.sk_p_label}, ID'))"
        )
        lines = [
            head,
            f"{INDENT}{formula}",
            _value("message", e.message),
            _value("nonce", e.nonce),
            _value("ID'", e.id_body),
            _value(f"prf({e.sk_p_label}, ID')", e.maced_id),
        ]
        if not signature:
            lines.append(_value("prf(PSK, \"Key Pad for IKEv2\")", e.auth_key))
        if e.expected:
            lines.append(_value("AUTH expected" if e.action == "verified" else "AUTH", e.expected))
        if e.received is not None:
            lines.append(_value("AUTH received", e.received))
        return "\n".join(lines)
    if isinstance(e, CertificateEvent):
        lines = [f"{who} checks the {e.of_role}'s certificate {e.subject}: " + ("valid" if e.ok else f"REFUSED: {e.reason}")]
        lines += [f"{INDENT}{'ok ' if c['ok'] else 'NO '} {c['name']}: {c['detail']}" for c in e.checks]
        return "\n".join(lines)
    if isinstance(e, ProposalEvent):
        lines = [f"{who} {e.protocol} proposal: " + (f"chose {e.chosen}" if e.chosen else "NO PROPOSAL CHOSEN")]
        lines += [f"{INDENT}offered:    {o}" for o in e.offered]
        lines += [f"{INDENT}configured: {c}" for c in e.configured]
        lines += [f"{INDENT}- {r}" for r in e.reasons]
        return "\n".join(lines)
    if isinstance(e, TrafficSelectorEvent):
        return (
            f"{who} traffic selectors: {e.reason}\n"
            f"{INDENT}offered TSi {', '.join(e.offered_tsi)}  TSr {', '.join(e.offered_tsr)}\n"
            f"{INDENT}agreed  TSi {', '.join(e.chosen_tsi) or '-'}  TSr {', '.join(e.chosen_tsr) or '-'}"
        )
    if isinstance(e, ChildSaEvent):
        lines = [f"{who} Child SA '{e.name}' {e.action}: ESP {e.mode} mode, {e.algorithms}, {', '.join(e.local_ts)} <=> {', '.join(e.remote_ts)}"]
        for label, sa in (("in ", e.inbound), ("out", e.outbound)):
            lines.append(f"{INDENT}{label} SPI 0x{sa['spi']} {sa['src']} -> {sa['dst']}  enc {sa['encryption_key']}" + (f"  int {sa['integrity_key']}" if sa["integrity_key"] else ""))
        return "\n".join(lines)
    if isinstance(e, IkeSaEvent):
        text = f"{who} IKE SA {e.spi_i.hex()}_i {e.spi_r.hex()}_r {e.state.upper()}"
        return text + (f" ({e.algorithms})" if e.algorithms else "") + (f": {e.reason}" if e.reason else "")
    if isinstance(e, Ikev1HashEvent):
        status = "" if e.action == "computed" else (": OK" if e.ok else ": MISMATCH")
        lines = [f"{who} {'computes' if e.action == 'computed' else 'verifies'} {e.label}{status}   [{e.prf}]", f"{INDENT}{e.formula}",
                 _value(e.key_label, e.key)]
        lines += [_value(name, value) for name, value in e.parts.items()]
        lines.append(_value(e.label, e.output))
        if e.received is not None:
            lines.append(_value(f"{e.label} received", e.received))
        return "\n".join(lines)
    if isinstance(e, Ikev1IvEvent):
        return "\n".join([f"{who} {e.label}: {e.formula}"] + [_value(k, v) for k, v in e.inputs.items()] + [_value("IV", e.output)])
    if isinstance(e, Ikev1KeysEvent):
        return f"{who} ISAKMP SA {e.cky_i.hex()}_i {e.cky_r.hex()}_r keyed: {e.cipher}-{e.hash}\n" + "\n".join(
            _value(k, v) for k, v in e.keys.items())
    if isinstance(e, CommandEvent):
        how = "runs" if e.executed else "equivalent commands"
        return f"{who} {e.purpose} ({how}):\n" + "\n".join(f"{INDENT}{c}" for c in e.commands)
    if isinstance(e, PingEvent):
        return f"{who} {e.line}"
    if isinstance(e, NoteEvent):
        mark = {"info": "", "warning": "warning: ", "error": "ERROR: "}.get(e.level, "")
        return f"{who} {mark}" + "\n".join(textwrap.wrap(e.text, 110, subsequent_indent=INDENT * 2))
    return f"{who} {e.kind}"


def render_text(events: Iterable[Event]) -> str:
    return "\n".join(render_event(e) for e in events)


def render_jsonl(events: Iterable[Event]) -> str:
    return "\n".join(json.dumps(e.to_dict(), sort_keys=False) for e in events)


def render_counters(counters: dict[str, dict]) -> str:
    """Per-SA ESP counters of each side, as the last ping line saw them."""
    lines = []
    for side, c in counters.items():
        for direction in ("outbound", "inbound"):
            for spi, n in (c.get(direction) or {}).items():
                lines.append(
                    f"{side:>5} {direction:8} SPI 0x{spi}: {n['packets']} packets, {n['bytes']} bytes, "
                    f"{n['replay_drops']} replay drops, {n['integrity_failures']} integrity failures"
                )
        dropped = {k: v for k, v in (c.get("dropped") or {}).items() if v}
        if dropped:
            lines.append(f"{side:>5} dropped before ESP: " + ", ".join(f"{k} {v}" for k, v in dropped.items()))
    return "\n".join(lines)
