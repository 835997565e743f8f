"""A cursor that reads big-endian values and records a Field for each one it reads.

Every field of every IKEv1 message and of every IKEv2 tree goes through here (the IKEv2 engine
decodes without a tree, see ikev2_quiet), so it is written for speed: a leaf is
recorded as a tuple of Field's arguments with offsets in `data` (its group's `children` makes a
Field of it when first read, see fields.from_record), its display text is computed only when read,
values come from direct indexing, and groups and bounds are explicit calls, not context managers.
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import DecodeError
from .fields import Field, from_record

Show = Callable[[object], str] | None  # display text for a value; None: the value in decimal or hex
Note = str | Callable[[object], str]  # a function of the value for notes that depend on it (see Field)

from_bytes = int.from_bytes  # looked up once: `int.from_bytes` makes a bound method at each call

HEX_PREVIEW = 32  # bytes shown in a display string before it is shortened
RESERVED_NOTE = "Must be zero; ignored on receipt."
RESERVED_NONZERO_NOTE = RESERVED_NOTE + " Nonzero here: the sender did not clear it."


def hex_display(data: bytes) -> str:
    """Hex for display; long values are shortened (the Field keeps the full value)."""
    if len(data) <= HEX_PREVIEW:
        return data.hex() if data else "(empty)"
    return f"{data[:HEX_PREVIEW].hex()}… ({len(data)} bytes)"


class Reader:
    """Reads `data[pos:limit]`; offsets in Fields and errors are `base + position in data`.

    Fields are appended to `out`; between `open_group()` and `close_group()` they are nested under
    a parent Field. Leaves are read inside a group (they are recorded as tuples that its `children`
    makes Fields of). A substructure's length narrows the reads by setting `limit` (and restoring it).
    `context` names the payload in error messages ("KE payload").

    A DecodeError abandons the Reader, so groups and limits need no restoring on the way out.
    """

    __slots__ = ("data", "context", "base", "pos", "limit", "out", "_outer")

    def __init__(self, data: bytes, *, context: str, base: int = 0, pos: int = 0) -> None:
        self.data = data
        self.context = context
        self.base = base
        self.pos = pos
        self.limit = len(data)
        self.out: list[Field | tuple] = []
        self._outer: list[list[Field | tuple]] = []  # the `out` lists of the enclosing groups

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
        if self.limit - self.pos < size:
            raise self.error(field, f"the payload body is {self.remaining} bytes; {what} needs at least {size}")

    # The readers below repeat a few lines instead of sharing helpers: a call costs more than they do.

    def reserved(self, size: int) -> None:
        """RESERVED must be sent as zero and ignored on receipt (RFC 7296 §3.2): accept, but say so."""
        pos = self.pos
        end = pos + size
        if end > self.limit:
            raise self.error("Reserved", f"needs {size} bytes but only {self.limit - pos} remain")
        self.pos = end
        value = self.data[pos] if size == 1 else from_bytes(self.data[pos:end], "big")  # 1: the common size
        note = RESERVED_NONZERO_NOTE if value else RESERVED_NOTE
        self.out.append(("Reserved", pos, end, value, "", note, None, str))

    def raw(self, name: str, n: int, *, show: Show = None, note: Note = "") -> bytes:
        pos = self.pos
        end = pos + n
        if end > self.limit:
            raise self.error(name, f"needs {n} bytes but only {self.limit - pos} remain")
        self.pos = end
        value = self.data[pos:end]
        self.out.append((name, pos, end, value, "", note, None, show or hex_display))
        return value

    def rest(self, name: str, *, show: Show = None, note: Note = "") -> bytes:
        pos, end = self.pos, self.limit
        self.pos = end
        value = self.data[pos:end]
        self.out.append((name, pos, end, value, "", note, None, show or hex_display))
        return value

    def uint(self, name: str, size: int, *, show: Show = None, note: Note = "") -> int:
        pos = self.pos
        end = pos + size
        if end > self.limit:
            raise self.error(name, f"needs {size} bytes but only {self.limit - pos} remain")
        self.pos = end
        value = from_bytes(self.data[pos:end], "big")
        self.out.append((name, pos, end, value, "", note, None, show or str))
        return value

    def u8(self, name: str, *, show: Show = None, note: Note = "") -> int:
        pos = self.pos
        if pos >= self.limit:
            raise self.error(name, f"needs 1 bytes but only {self.limit - pos} remain")
        self.pos = end = pos + 1
        value = self.data[pos]  # indexing: cheaper than int.from_bytes of a slice
        self.out.append((name, pos, end, value, "", note, None, show or str))
        return value

    def u16(self, name: str, *, show: Show = None, note: Note = "") -> int:
        pos = self.pos
        end = pos + 2
        if end > self.limit:
            raise self.error(name, f"needs 2 bytes but only {self.limit - pos} remain")
        self.pos = end
        data = self.data
        value = data[pos] << 8 | data[pos + 1]
        self.out.append((name, pos, end, value, "", note, None, show or str))
        return value

    def u32(self, name: str, *, show: Show = None, note: Note = "") -> int:
        pos = self.pos
        end = pos + 4
        if end > self.limit:
            raise self.error(name, f"needs 4 bytes but only {self.limit - pos} remain")
        self.pos = end
        value = from_bytes(self.data[pos:end], "big")
        self.out.append((name, pos, end, value, "", note, None, show or str))
        return value

    @property
    def last(self) -> Field:
        """The Field recorded most recently (to amend its display or note)."""
        out = self.out
        if type(out[-1]) is tuple:
            out[-1] = from_record(out[-1], self.base)
        return out[-1]

    def open_group(self, name: str, *, note: str = "") -> Field:
        """Start a Field that holds the Fields read until `close_group()`."""
        start = self.base + self.pos
        records: list[Field | tuple] = []
        parent = Field(name, start, start, None, "", note, None, None, records, self.base)
        self.out.append(parent)
        self._outer.append(self.out)
        self.out = records
        return parent

    def close_group(self, group: Field) -> None:
        """End the innermost open group, which now spans the Fields read inside it."""
        self.out = self._outer.pop()
        group.end = self.base + self.pos
