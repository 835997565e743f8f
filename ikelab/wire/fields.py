"""Decoded fields with byte spans: the tree the TUI highlights and the trace records."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum


@dataclass
class Field:
    """One decoded field, or a group of them (a payload, a proposal, a transform)."""

    name: str
    start: int  # absolute offset of the first byte
    end: int  # exclusive
    value: object = None  # the raw decoded value: int, bytes, str or None for groups
    display: str = ""  # human text for the value
    note: str = ""  # what the field means, for students
    children: list[Field] = field(default_factory=list)

    def walk(self) -> Iterator[Field]:
        """Depth first, self included."""
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, name: str) -> Field | None:
        """First descendant (depth first, self excluded) with this name."""
        for node in self.walk():
            if node is not self and node.name == name:
                return node
        return None

    def to_dict(self) -> dict:
        """JSON-ready form: bytes become hex strings, enums plain ints."""
        return {
            "name": self.name,
            "start": self.start,
            "end": self.end,
            "value": _json_value(self.value),
            "display": self.display,
            "note": self.note,
            "children": [child.to_dict() for child in self.children],
        }


def _json_value(value: object) -> object:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, Enum):
        return value.value
    return value
