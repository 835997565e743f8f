"""Key derivation: each prf and prf+ with its formula, inputs, blocks and outputs."""

from __future__ import annotations

import re

from rich.console import Group
from rich.text import Text

from ikelab.trace import Event, IkeKeysEvent, Ikev1IvEvent, Ikev1KeysEvent, PrfEvent, PrfPlusEvent
from ikelab.tui.panels.base import TextPanel
from ikelab.tui.text import hexval, sized, values_table

PRF_ARGS = re.compile(r"prf\+?\((.+?), (.+)\)$")


def formula_inputs(formula: str, key: str, data: str) -> tuple[str, str]:
    """The names a formula gives its two inputs: "prf(Ni | Nr, g^ir)" -> ("Ni | Nr", "g^ir")."""
    match = PRF_ARGS.search(formula)
    return (match.group(1), match.group(2)) if match else (key, data)


def computations(events: list[Event]) -> list[tuple[PrfEvent | PrfPlusEvent, list[PrfEvent | PrfPlusEvent]]]:
    """Each computation once (from the first peer to make it), with the other peers' copies of it."""
    seen: dict[tuple[str, str, int], PrfEvent | PrfPlusEvent] = {}
    copies: dict[int, list] = {}
    counts: dict[tuple[str, str], int] = {}
    order = []
    for e in events:
        if not isinstance(e, (PrfEvent, PrfPlusEvent)):
            continue
        n = counts.get((e.peer, e.label), 0)
        counts[(e.peer, e.label)] = n + 1
        first = seen.get((e.kind, e.label, n))
        if first is None:
            seen[(e.kind, e.label, n)] = e
            copies[id(e)] = []
            order.append(e)
        elif first.peer != e.peer:
            copies[id(first)].append(e)
    return [(e, copies[id(e)]) for e in order]


def agreement(first, others: list) -> Text:
    text = Text(f"  computed by {first.peer}", "dim")
    for other in others:
        if other.output == first.output:
            text.append(f"; {other.peer}: the same ✓", "green")
        else:
            text.append(f"; {other.peer}: DIFFERENT ✗", "bold red")
    return text


def block_input(block: dict, previous: bytes, seed: bytes) -> str:
    """What an IKEv1 expansion block hashed, named from its recorded bytes: "S", "K1 | S", "0x00"."""
    i, data = block["index"], block["input"]
    if i > 1 and data == previous + seed:
        return f"K{i - 1} | S" if seed else f"K{i - 1}"
    if data == seed:
        return "S"
    return f"0x{data.hex()}"


def ikev1_expansion(e: PrfPlusEvent) -> list:
    """Ka or KEYMAT (RFC 2409 §5.5, appendix B): K1 = prf(K, S), Ki = prf(K, K(i-1) | S), no counter byte."""
    key_name = next(iter(re.findall(r"\bSKEYID_[dae]\b", e.formula)), "K")
    seed = re.search(r"K1 = prf\(\w+, (.+?)\),", e.formula)
    table = values_table()
    table.add_row(sized(f"K = {key_name}", e.key), hexval(e.key))
    if e.seed:
        table.add_row(sized(f"S = {seed.group(1)}" if seed else "S", e.seed), hexval(e.seed))
    previous = b""
    for block in e.blocks:
        table.add_row(f"K{block['index']} = prf(K, {block_input(block, previous, e.seed)})", hexval(block["output"]))
        previous = block["output"]
    table.add_row(Text("split into" if len(e.split) > 1 else "taken", "dim"), "")
    for name, value in e.split.items():
        table.add_row(sized(name, value), hexval(value))
    return [Text.assemble((f"{e.label}: ", "bold"), (e.formula, "bold underline"), (f"   {e.prf}", "dim")), table]


def ikev1_ivs(events: list[Event]) -> list:
    """IKEv1's CBC IVs (RFC 2409 appendix B): the hashed ones with their inputs, then each message's."""
    ivs: dict[tuple[str, int], list[Ikev1IvEvent]] = {}
    counts: dict[tuple[str, str], int] = {}
    for e in events:
        if isinstance(e, Ikev1IvEvent):
            n = counts.get((e.peer, e.label), 0)
            counts[(e.peer, e.label)] = n + 1
            ivs.setdefault((e.label, n), []).append(e)
    if not ivs:
        return []
    parts = [Text("CBC IVs   RFC 2409 appendix B", "bold"), Text("")]
    chained = values_table("", "IV", "where it comes from")
    chained.add_column("", no_wrap=True)
    for same in ivs.values():
        first, others = same[0], [e for e in same[1:] if e.peer != same[0].peer]
        if first.inputs:
            table = values_table()
            for name, value in first.inputs.items():
                table.add_row(sized(name, value), hexval(value))
            table.add_row(sized("= IV", first.output), hexval(first.output))
            parts += [Text.assemble((f"{first.label}: ", "bold"), (first.formula, "bold underline")), table, agreement(first, others), Text("")]
        else:
            same_iv = Text("✓", "green") if all(o.output == first.output for o in others) else Text("✗ differs", "bold red")
            chained.add_row(first.label.removeprefix("IV of "), hexval(first.output), Text(first.formula.removeprefix("IV = "), "dim"),
                            same_iv if others else "")
    if chained.row_count:
        parts += [Text("The IV of each encrypted message (✓: both sides used the same)", "bold underline"), chained, Text("")]
    return parts


class KeysPanel(TextPanel):
    def show(self, events: list[Event]) -> None:
        parts = []
        for keys in [e for e in events if isinstance(e, IkeKeysEvent)][:1]:
            algorithms = keys.cipher + (f"-{keys.integrity}" if keys.integrity else "") + f"-{keys.prf}"
            parts += [Text(f"IKE SA {keys.spi_i.hex()}_i {keys.spi_r.hex()}_r keyed with {algorithms}", "bold"), Text("")]
        for keys in [e for e in events if isinstance(e, Ikev1KeysEvent)][:1]:
            parts += [Text(f"ISAKMP SA {keys.cky_i.hex()}_i {keys.cky_r.hex()}_r keyed with {keys.cipher}-{keys.hash}", "bold"), Text("")]
        for first, others in computations(events):
            if isinstance(first, PrfEvent):
                parts += self._prf(first)
            else:
                parts += self._prf_plus(first) if "prf+(" in first.formula else ikev1_expansion(first)
            parts += [agreement(first, others), Text("")]
        parts += ikev1_ivs(events)
        if not parts:
            parts = [Text("No keys yet: SKEYSEED needs both nonces and g^ir, known after IKE_SA_INIT.", "dim italic")]
        self.update(Group(*parts))

    @staticmethod
    def _prf(e: PrfEvent) -> list:
        key_name, data_name = formula_inputs(e.formula, "key", "data")
        table = values_table()
        table.add_row(sized(key_name, e.key), hexval(e.key))
        table.add_row(sized(data_name, e.data), hexval(e.data))
        table.add_row(sized(f"= {e.label}", e.output), hexval(e.output))
        return [Text.assemble((e.formula, "bold underline"), (f"   {e.prf}", "dim")), table]

    @staticmethod
    def _prf_plus(e: PrfPlusEvent) -> list:
        key_name, seed_name = formula_inputs(e.formula, "K", "S")
        table = values_table()
        table.add_row(sized(f"K = {key_name}", e.key), hexval(e.key))
        table.add_row(sized(f"S = {seed_name}", e.seed), hexval(e.seed))
        for block in e.blocks:
            i = block["index"]
            previous = f"T{i - 1} | " if i > 1 else ""
            table.add_row(f"T{i} = prf(K, {previous}S | 0x{i:02x})", hexval(block["output"]))
        table.add_row(Text("split into", "dim"), "")
        for name, value in e.split.items():
            table.add_row(sized(name, value), hexval(value))
        return [Text.assemble((f"{e.label}: ", "bold"), (e.formula, "bold underline"), (f"   {e.prf}", "dim")), table]
