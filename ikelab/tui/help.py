"""The help screen: the keys, and what each tab shows."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# ikelab: stepping through IKE

| Key | What it does |
| --- | --- |
| `n`, space | next step: one datagram carried to the other peer and processed |
| `b` | back one step (the run is replayed from its seed) |
| `r` | restart the run |
| `c` | continue to the end |
| `p` | ping through the tunnel (namespace lab only, once the Child SAs are up) |
| `e` | export an annotated pcapng and Wireshark's decryption tables |
| `ctrl+p` | command palette |
| `?` | this help; `escape` closes it |
| `q` | quit (the lab's namespaces are removed) |

**Ladder** (top): one arrow per datagram; dashed while in flight. Highlight an arrow to open
that message, press enter (or click it) to jump to the Message tab.

**Lesson**: the lesson's explanation of the step and what each peer did in it.
**Message**: the payload tree, SK contents decrypted; the hex view highlights the selected
field's bytes, and clicking a byte selects its field.
**DH**: each peer's private and public value and the shared secret each computed.
**Keys**: SKEYSEED, the prf+ blocks and every key with its formula and inputs (IKEv1: SKEYID, SKEYID_d/a/e, Ka, KEYMAT and the CBC IVs).
**AUTH**: the AUTH each side computed next to what the other expected; differences marked (IKEv1: HASH_I/HASH_R, SIG_I/SIG_R, quick mode's HASH(1)-(3)), and the certificate checks.
**SAs**: the IKE SA and each Child SA with SPIs, algorithms, keys and ESP counters.
**Ping**: live ping replies through the tunnel and the ESP counters.
**Datapath**: the commands the lab ran and the equivalent `ip xfrm` commands.
"""


class HelpScreen(ModalScreen):
    BINDINGS: ClassVar[list[Binding]] = [Binding("escape,question_mark,q", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 100; height: 90%; border: round $primary; background: $surface; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Markdown(HELP)
