"""One message field by field: the payload tree (SK contents decrypted) beside its bytes.

Highlighting a field in the tree highlights its bytes; clicking a byte moves the tree to the
deepest field that holds it. Fields inside SK have spans into the plaintext, so the hex view
shows whichever bytes (datagram or decrypted contents) the selected field belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static, Tree
from textual.widgets.tree import TreeNode

from ikelab.trace import MessageEvent
from ikelab.tui.focus import role
from ikelab.tui.hexview import HexView
from ikelab.wire.errors import DecodeError
from ikelab.wire.fields import Field

DATAGRAM, PLAINTEXT = "datagram", "decrypted SK contents"


@dataclass(frozen=True)
class FieldRef:
    field: Field
    region: str  # DATAGRAM or PLAINTEXT: which bytes the span points into


def field_label(f: Field) -> Text:
    text = Text.assemble((f.name, "bold"))
    if f.display:
        text.append(f": {f.display}")
    text.append(f"  [{f.start}:{f.end}]", "dim")
    return text


class MessageView(Horizontal):
    DEFAULT_CSS = """
    MessageView > Tree { width: 1fr; min-width: 30; }
    MessageView > #bytes { width: 44; }
    MessageView #hex { height: 1fr; }
    MessageView #field-info { height: auto; max-height: 8; padding: 0 1; }
    """
    NARROW_BYTES, WIDE_BYTES = 44, 78  # room for 8 or 16 bytes a row (hex, ASCII, border, scrollbar)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.message: MessageEvent | None = None
        self.nodes: dict[str, list[TreeNode]] = {DATAGRAM: [], PLAINTEXT: []}

    def compose(self) -> ComposeResult:
        yield Tree("no message yet", id="payloads")
        with Vertical(id="bytes"):
            yield HexView(id="hex")
            yield Static(id="field-info")

    def on_resize(self, event) -> None:
        # 16 bytes a row only where the tree keeps enough room beside them.
        self.query_one("#bytes").styles.width = self.WIDE_BYTES if event.size.width >= 150 else self.NARROW_BYTES

    @property
    def tree(self) -> Tree:
        return self.query_one("#payloads", Tree)

    def show(self, message: MessageEvent | None) -> None:
        if message is self.message:
            return
        self.message = message
        tree = self.tree
        self.nodes = {DATAGRAM: [], PLAINTEXT: []}
        if message is None:
            tree.reset("no message yet")
            self.query_one(HexView).show(b"", "bytes", None)
            self.query_one("#field-info", Static).update("")
            return
        head = f"{message.peer} {message.direction} {message.exchange} {role(message)} #{message.message_id}  {message.src} → {message.dst}"
        try:
            outer, inner = message.tree, message.inner_tree
        except DecodeError as e:
            self._undecodable(head, e)
            return
        tree.reset(head, FieldRef(outer, DATAGRAM))
        self.nodes[DATAGRAM].append(tree.root)
        for child in outer.children:
            self._add(tree.root, child, DATAGRAM, expand=True)
        if inner:
            size = len(message.plaintext)
            group = Field(PLAINTEXT, 0, size, display=f"{size} bytes, the payloads then padding", children=inner,
                          note="What SK_e decrypted: the inner payloads, padding and the pad length byte.")
            # Under the SK payload it came from (IKEv1 has none: then under the message).
            sk = next((n for n in tree.root.children if n.data.field.name.startswith("SK")), tree.root)
            label = Text.assemble(("decrypted SK contents", "bold green"), (f"  {size} bytes", "dim"))
            node = sk.add(label, FieldRef(group, PLAINTEXT), expand=True)
            self.nodes[PLAINTEXT].append(node)
            for child in inner:
                self._add(node, child, PLAINTEXT, expand=False)
        tree.root.expand()
        tree.move_cursor(tree.root)
        self._show_field(tree.root.data)

    def _undecodable(self, head: str, error: DecodeError) -> None:
        """A message the codec rejects (a lesson may send one on purpose): point at the bad byte."""
        self.tree.reset(Text.assemble(head, ("  cannot be decoded", "bold red")))
        data = self.message.data
        self.query_one(HexView).show(data, f"{DATAGRAM}, {len(data)} bytes", (error.offset, error.offset + 1))
        self.query_one("#field-info", Static).update(Text(str(error), "red"))

    def _add(self, parent: TreeNode, f: Field, region: str, expand: bool) -> None:
        if f.children:
            node = parent.add(field_label(f), FieldRef(f, region), expand=expand)
        else:
            node = parent.add_leaf(field_label(f), FieldRef(f, region))
        self.nodes[region].append(node)  # parents before children: deepest_node relies on it
        for child in f.children:
            self._add(node, child, region, expand=False)

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted) -> None:
        if isinstance(event.node.data, FieldRef):
            self._show_field(event.node.data)

    def _show_field(self, ref: FieldRef) -> None:
        data = self.message.data if ref.region == DATAGRAM else self.message.plaintext
        f = ref.field
        whole = f.start == 0 and f.end >= len(data)
        title = f"{ref.region}, {len(data)} bytes"
        self.query_one(HexView).show(data, title, None if whole else (f.start, f.end))
        info = Text.assemble((f.name, "bold"), f"  bytes {f.start}–{f.end - 1} of the {ref.region} ({f.end - f.start} bytes)")
        if ref.field is self.message.tree:
            info.append(f"\nprotection: {self.message.protection}", "dim")
        if f.note:
            info.append("\n" + f.note, "italic")
        self.query_one("#field-info", Static).update(info)

    def on_hex_view_byte_clicked(self, event: HexView.ByteClicked) -> None:
        node = self.deepest_node(self._current_region(), event.offset)
        if node is None:
            return
        hidden = [a for a in node_ancestors(node) if not a.is_expanded]
        for ancestor in hidden:
            ancestor.expand()
        if hidden:
            self.call_after_refresh(self.tree.move_cursor, node)  # lines are rebuilt on refresh
        else:
            self.tree.move_cursor(node)

    def _current_region(self) -> str:
        node = self.tree.cursor_node
        return node.data.region if node is not None and isinstance(node.data, FieldRef) else DATAGRAM

    def deepest_node(self, region: str, offset: int) -> TreeNode | None:
        """The node of the smallest field that holds the byte; the deeper one on a tie."""
        best = None
        for node in self.nodes[region]:
            f = node.data.field
            if f.start <= offset < f.end and (best is None or f.end - f.start <= best.data.field.end - best.data.field.start):
                best = node
        return best


def node_ancestors(node: TreeNode) -> list[TreeNode]:
    out = []
    parent = node.parent
    while parent is not None:
        out.append(parent)
        parent = parent.parent
    return out
