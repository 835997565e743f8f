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
    - `show`, if given, computes `display` from `value` when `display` is first read (until then
      the `display` slot is unset, and reading it lands in __getattr__);
    - `children` may hold leaves as plain tuples of the constructor's arguments (the Reader records
      them so: a tuple costs a fraction of a Field), which become Fields when `children` is read.
    Hand-written (with __slots__) because a dataclass cannot hold lazy attributes cheaply.
    """

    __slots__ = ("name", "start", "end", "value", "display", "note", "_children", "_show")
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
        self._children = [] if children is None else children

    @classmethod
    def group(cls, name: str, start: int, note: str) -> Field:
        """An empty group at `start`, as the Reader opens one: same as cls(name, start, start, note=note).

        Sets the slots itself: calling cls() runs __init__ through the type, which costs more than
        the rest of opening a group (and a message has a dozen groups).
        """
        group = _new_object(cls)
        group.name, group.start, group.end, group.value = name, start, start, None
        group.display, group.note, group._children = "", note, []
        return group

    def display_later(self, show: Callable[[object], str]) -> None:
        """Make `display` show(value), computed when first read, as with the constructor's `show`."""
        with suppress(AttributeError):  # already unset: another show was pending
            del self.display
        self._show = show

    def __getattr__(self, name: str) -> str:
        """Only called for an unset slot, which can only be `display` (see `show`)."""
        if name != "display":
            raise AttributeError(f"'Field' object has no attribute '{name}'")
        self.display = self._show(self.value)
        return self.display

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


_new_object = object.__new__


def _json_value(value: object) -> object:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, Enum):
        return value.value
    return value
