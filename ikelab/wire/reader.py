"""A cursor that reads big-endian values and records a Field for each one it reads."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .errors import DecodeError
from .fields import Field

Show = str | Callable[[object], str] | None

HEX_PREVIEW = 32  # bytes shown in a display string before it is shortened


def hex_display(data: bytes) -> str:
    """Hex for display; long values are shortened (the Field keeps the full value)."""
    if len(data) <= HEX_PREVIEW:
        return data.hex() if data else "(empty)"
    return f"{data[:HEX_PREVIEW].hex()}… ({len(data)} bytes)"


class Reader:
    """Reads `data[pos:limit]`; offsets in Fields and errors are `base + position in data`.

    Fields are appended to `out`; `group()` nests them under a parent Field.
    `context` names the payload in error messages ("KE payload").
    """

    def __init__(self, data: bytes, *, context: str, base: int = 0, pos: int = 0) -> None:
        self.data = data
        self.context = context
        self.base = base
        self.pos = pos
        self.limit = len(data)  # narrowed by bounded()
        self.out: list[Field] = []

    @property
    def remaining(self) -> int:
        return self.limit - self.pos

    def offset(self, pos: int | None = None) -> int:
        """Absolute offset of `pos` (default: the cursor)."""
        return self.base + (self.pos if pos is None else pos)

    def error(self, field: str, reason: str, *, at: int | None = None) -> DecodeError:
        """A DecodeError for `field` at buffer position `at` (default: the cursor)."""
        return DecodeError(reason, payload=self.context, field=field, offset=self.offset(at))

    def error_at(self, field: Field, reason: str) -> DecodeError:
        """A DecodeError pointing at a field already read."""
        return DecodeError(reason, payload=self.context, field=field.name, offset=field.start)

    def need(self, size: int, field: str, what: str) -> None:
        """Check a minimum body size up front, for a clearer message than a truncated read."""
        if self.remaining < size:
            raise self.error(field, f"the payload body is {self.remaining} bytes; {what} needs at least {size}")

    def reserved(self, size: int) -> None:
        """RESERVED must be sent as zero and ignored on receipt (RFC 7296 §3.2): accept, but say so."""
        if self.uint("Reserved", size, note="Must be zero; ignored on receipt."):
            self.last.note += " Nonzero here: the sender did not clear it."

    def raw(self, name: str, n: int, *, show: Show = None, note: str = "") -> bytes:
        if n > self.remaining:
            raise self.error(name, f"needs {n} bytes but only {self.remaining} remain")
        value = self.data[self.pos : self.pos + n]
        self._record(name, n, value, show, note)
        return value

    def rest(self, name: str, *, show: Show = None, note: str = "") -> bytes:
        return self.raw(name, self.remaining, show=show, note=note)

    def uint(self, name: str, size: int, *, show: Show = None, note: str = "") -> int:
        if size > self.remaining:
            raise self.error(name, f"needs {size} bytes but only {self.remaining} remain")
        value = int.from_bytes(self.data[self.pos : self.pos + size], "big")
        self._record(name, size, value, show, note)
        return value

    def u8(self, name: str, *, show: Show = None, note: str = "") -> int:
        return self.uint(name, 1, show=show, note=note)

    def u16(self, name: str, *, show: Show = None, note: str = "") -> int:
        return self.uint(name, 2, show=show, note=note)

    def u32(self, name: str, *, show: Show = None, note: str = "") -> int:
        return self.uint(name, 4, show=show, note=note)

    @property
    def last(self) -> Field:
        """The Field recorded most recently (to amend its display or note)."""
        return self.out[-1]

    @contextmanager
    def group(self, name: str, *, note: str = "") -> Iterator[Field]:
        """Nest the Fields read inside the block under a new Field spanning them."""
        parent = Field(name, self.offset(), self.offset(), note=note)
        self.out.append(parent)
        outer, self.out = self.out, parent.children
        try:
            yield parent
        finally:
            self.out = outer
            parent.end = self.offset()

    @contextmanager
    def bounded(self, limit: int) -> Iterator[None]:
        """Restrict reads to `data[pos:limit]` inside the block (a substructure's length)."""
        outer, self.limit = self.limit, limit
        try:
            yield
        finally:
            self.limit = outer

    def _record(self, name: str, size: int, value: bytes | int, show: Show, note: str) -> None:
        if callable(show):
            display = show(value)
        elif show is not None:
            display = show
        else:
            display = hex_display(value) if isinstance(value, bytes) else str(value)
        start = self.offset()
        self.out.append(Field(name, start, start + size, value, display, note))
        self.pos += size
