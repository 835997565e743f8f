"""Decoded fields with byte spans: the tree the TUI highlights and the trace records."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from enum import Enum


class Field:
    """One decoded field, or a group of them (a payload, a proposal, a transform).

    Behaves like a dataclass of (name, start, end, value, display, note, children), with two
    differences made for speed, so that decoding does not build what only a person looking at the
    tree needs (the engine decodes every message it receives and rarely looks at the tree):
    - `show`, if given, computes `display` from `value` when `display` is first read;
    - `children` may hold leaves as plain tuples of the constructor's arguments (the Reader records
      them so: a tuple costs a fraction of a Field), which become Fields when `children` is read.
    Hand-written (with __slots__) because a dataclass cannot hold lazy attributes cheaply.
    """

    __slots__ = ("name", "start", "end", "value", "_display", "_show", "note", "_children")
    __match_args__ = ("name", "start", "end", "value", "display", "note", "children")

    def __init__(
        self,
        name: str,
        start: int,  # absolute offset of the first byte
        end: int,  # exclusive
        value: object = None,  # the raw decoded value: int, bytes, str or None for groups
        display: str = "",  # human text for the value
        note: str = "",  # what the field means, for students
        children: list[Field] | None = None,
        show: Callable[[object], str] | None = None,  # display = show(value), computed on first read
    ) -> None:
        self.name = name
        self.start = start
        self.end = end
        self.value = value
        self._display = display
        self._show = show
        self.note = note
        self._children = [] if children is None else children

    @property
    def display(self) -> str:
        if self._show is not None:
            self._display = self._show(self.value)
            self._show = None
        return self._display

    @display.setter
    def display(self, text: str) -> None:
        self._display = text
        self._show = None

    @property
    def children(self) -> list[Field]:
        children = self._children
        if tuple in map(type, children):
            children[:] = [Field(*child) if type(child) is tuple else child for child in children]
        return children

    @children.setter
    def children(self, children: list[Field]) -> None:
        self._children = children

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


def _json_value(value: object) -> object:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, Enum):
        return value.value
    return value
