"""Key derivation: each prf and prf+ with its formula, inputs, blocks and outputs."""

from __future__ import annotations

import re

from rich.console import Group
from rich.text import Text

from ikelab.trace import Event, IkeKeysEvent, PrfEvent, PrfPlusEvent
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


class KeysPanel(TextPanel):
    def show(self, events: list[Event]) -> None:
        parts = []
        for keys in [e for e in events if isinstance(e, IkeKeysEvent)][:1]:
            algorithms = keys.cipher + (f"-{keys.integrity}" if keys.integrity else "") + f"-{keys.prf}"
            parts += [Text(f"IKE SA {keys.spi_i.hex()}_i {keys.spi_r.hex()}_r keyed with {algorithms}", "bold"), Text("")]
        for first, others in computations(events):
            parts += self._prf(first) if isinstance(first, PrfEvent) else self._prf_plus(first)
            parts += [agreement(first, others), Text("")]
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
