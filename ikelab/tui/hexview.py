"""A hex dump whose bytes highlight for the selected field; clicking a byte reports its offset."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Static

OFFSET_WIDTH = 6  # "01a0  "
HIGHLIGHT = "bold black on yellow"


def bytes_per_row(width: int) -> int:
    """16 bytes a row where they fit (offset, hex, gap, ASCII), else 8."""
    return 16 if width >= OFFSET_WIDTH + 16 * 3 + 1 + 1 + 16 else 8


def _hex_column(j: int, per_row: int) -> int:
    return OFFSET_WIDTH + 3 * j + (1 if per_row == 16 and j >= 8 else 0)


def _ascii_column(per_row: int) -> int:
    return _hex_column(per_row - 1, per_row) + 3 + 1


def render_hex(data: bytes, highlight: tuple[int, int] | None, per_row: int) -> Text:
    start, end = highlight or (0, 0)
    text = Text(no_wrap=True)
    for row in range(0, len(data), per_row):
        chunk = data[row : row + per_row]
        text.append(f"{row:04x}  ", "dim")
        for j, byte in enumerate(chunk):
            if per_row == 16 and j == 8:
                text.append(" ")
            text.append(f"{byte:02x}", HIGHLIGHT if start <= row + j < end else "")
            text.append(" ")
        text.append(" " * (_ascii_column(per_row) - _hex_column(len(chunk), per_row)))
        for j, byte in enumerate(chunk):
            char = chr(byte) if 0x20 <= byte < 0x7F else "."
            text.append(char, HIGHLIGHT if start <= row + j < end else "dim")
        text.append("\n")
    text.rstrip()
    return text


def byte_at(x: int, y: int, per_row: int, length: int) -> int | None:
    """The offset of the byte drawn at column x of row y, in the hex or the ASCII part."""
    ascii_start = _ascii_column(per_row)
    if ascii_start <= x < ascii_start + per_row:
        j = x - ascii_start
    else:
        j = next((j for j in range(per_row) if _hex_column(j, per_row) <= x < _hex_column(j, per_row) + 2), None)
    if j is None:
        return None
    offset = y * per_row + j
    return offset if 0 <= offset < length else None


class HexView(VerticalScroll):
    """The bytes of one region (the datagram, or the decrypted SK contents)."""

    DEFAULT_CSS = """
    HexView { border: round $primary 50%; }
    HexView > Static { width: auto; }
    """

    class ByteClicked(Message):
        def __init__(self, offset: int) -> None:
            super().__init__()
            self.offset = offset

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.data = b""
        self.highlight: tuple[int, int] | None = None
        self._dump = Static()

    def compose(self):
        yield self._dump

    def show(self, data: bytes, title: str, highlight: tuple[int, int] | None) -> None:
        self.data, self.highlight = data, highlight
        self.border_title = title
        self._redraw()
        if highlight is not None:
            per_row = self._per_row()
            first, last = highlight[0] // per_row, max(highlight[1] - 1, highlight[0]) // per_row
            # Bring the field into view without jumping when it is visible already.
            if not (self.scroll_y <= first and last < self.scroll_y + self.scrollable_content_region.height):
                self.scroll_to(y=first, animate=False)

    def _per_row(self) -> int:
        return bytes_per_row(self.scrollable_content_region.width)

    def _redraw(self) -> None:
        self._dump.update(render_hex(self.data, self.highlight, self._per_row()))

    def on_resize(self) -> None:
        self._redraw()

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self._dump)
        if offset is None:
            return
        index = byte_at(offset.x, offset.y, self._per_row(), len(self.data))
        if index is not None:
            self.post_message(self.ByteClicked(index))
