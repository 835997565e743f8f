"""Decoded fields with byte spans: the tree the TUI highlights and the trace records."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import suppress
from enum import Enum


class Field:
    """One decoded field, or a group of them (a payload, a proposal, a transform).

    Behaves like a dataclass of (name, start, end, value, display, note, children), with two
    differences made for speed, so that decoding does not build what only a person looking at the
    tree needs (the engine decodes every message it receives and rarely looks at the tree):
    - `show`, if given, computes `display` from `value` when `display` is first read;
    - a group made with `records` (by the Reader) holds its leaves as records, tuples of the
      constructor's arguments (a tuple costs a fraction of a Field), which become Fields when
      `children` is first read (see `from_record`).
    Until then `display` or `children` is an unset slot, and reading it lands in __getattr__.
    Hand-written (with __slots__) because a dataclass cannot hold lazy attributes cheaply.
    """

    __slots__ = ("name", "start", "end", "value", "display", "note", "children", "_show", "_records", "_base")
    __match_args__ = ("name", "start", "end", "value", "display", "note", "children")

    def __init__(
        self,
        name: str,
        start: int,  # absolute offset of the first byte
        end: int,  # exclusive
        value: object = None,  # the raw decoded value: int, bytes, str or None for groups
        display: str = "",  # human text for the value
        note: str | Callable[[object], str] = "",  # what the field means, for students; or note(value)
        children: list[Field] | None = None,
        show: Callable[[object], str] | None = None,  # display = show(value), computed on first read
        records: list[Field | tuple] | None = None,  # children still being read, some as records
        records_base: int = 0,  # what the records' offsets count from
    ) -> None:
        self.name = name
        self.start = start
        self.end = end
        self.value = value
        if show is None:
            self.display = display
        else:
            self._show = show
        self.note = note if type(note) is str else note(value)
        if records is None:
            self.children = [] if children is None else children
        else:  # read `children` only once all records are in: later ones would stay records
            self._records = records
            self._base = records_base

    def display_later(self, show: Callable[[object], str]) -> None:
        """Make `display` show(value), computed when first read, as with the constructor's `show`."""
        with suppress(AttributeError):  # already unset: another show was pending
            del self.display
        self._show = show

    def __getattr__(self, name: str) -> object:
        """Only called for an unset slot: `display` (see `show`) or `children` (see `records`)."""
        if name == "display":
            self.display = self._show(self.value)
            return self.display
        if name == "children":
            records, base = self._records, self._base
            records[:] = [from_record(record, base) if type(record) is tuple else record for record in records]
            self.children = records
            return records
        raise AttributeError(f"'Field' object has no attribute '{name}'")

    def _astuple(self) -> tuple:
        return (self.name, self.start, self.end, self.value, self.display, self.note, self.children)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._astuple() == other._astuple()

    __hash__ = None  # mutable, like a dataclass with eq

    def __repr__(self) -> str:
        return (
            f"Field(name={self.name!r}, start={self.start!r}, end={self.end!r}, value={self.value!r}, "
            f"display={self.display!r}, note={self.note!r}, children={self.children!r})"
        )

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


def from_record(record: tuple, base: int) -> Field:
    """The Field for a record: a tuple of Field's arguments whose start and end count from `base`."""
    if base:
        name, start, end, *rest = record
        return Field(name, base + start, base + end, *rest)
    return Field(*record)


def _json_value(value: object) -> object:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, Enum):
        return value.value
    return value
