"""A capture and everything needed to read it: the pcapng, Wireshark's tables, and a note."""

from __future__ import annotations

from pathlib import Path

from ikelab.export.pcap import annotate_captured, wire_messages, write_pcapng
from ikelab.export.wireshark import write_profile
from ikelab.lessons import Lesson
from ikelab.trace import Trace

STANDARD_PORTS = (500, 4500)

NOTE = """\
{capture}: IKE messages of the lesson "{title}" ({slug}), every packet annotated with comments
(Wireshark: Statistics > Capture File Properties, or the packet's "Packet comments" tree).

The directory {profile}/ holds Wireshark's decryption tables, filled with the keys the two
ikelab peers actually used:
  ikev2_decryption_table   IKEv2 SK payloads (SPIs, SK_ei, SK_er, SK_ai, SK_ar)
  ikev1_decryption_table   IKEv1 encrypted messages (initiator cookie, encryption key Ka)
  esp_sa                   ESP packets of the Child SAs (empty when the run carried no ESP)
  preferences              turns on ESP decryption
  decode_as_entries        (loopback runs only) dissect ikelab's ports as ISAKMP

Wireshark:  WIRESHARK_CONFIG_DIR={profile} wireshark {capture}
            (or copy the records into Preferences > Protocols > ISAKMP > IKEv2 Decryption Table)
tshark:     WIRESHARK_CONFIG_DIR={profile} tshark -r {capture} -V
            WIRESHARK_CONFIG_DIR={profile} tshark -r {capture} -Y isakmp.enc.decrypted -T fields -e frame.comment

{origin}
"""


def export_capture(path: Path, trace: Trace, lesson: Lesson, captured: Path | None = None) -> list[Path]:
    """Write the capture: from a real one (`captured`, the lab's tcpdump) or rebuilt from the trace."""
    path = Path(path)
    narratives = {s.match: s.text for s in lesson.steps}
    if captured is not None:
        annotate_captured(captured, path, trace, narratives)
    else:
        write_pcapng(path, trace, narratives)
    profile = path.with_suffix(".wireshark")
    ports = []
    for event in wire_messages(trace):
        for endpoint in (event.src, event.dst):
            port = int(endpoint.rpartition(":")[2])
            if port not in STANDARD_PORTS:
                ports.append(port)
    written = [path] + write_profile(profile, trace, ports)
    note = profile / "README.txt"
    if captured is not None:
        origin = "Captured for real by tcpdump on the lab's veth: IKE, then the ESP packets of the ping."
    else:
        origin = ("The frames carry the exact datagrams the peers sent; the link layer and timestamps are made by\n"
                  "ikelab (memory or loopback transport; the clock is the run's virtual clock from 2026-01-01 UTC).")
    note.write_text(NOTE.format(capture=path.name, profile=profile.name, title=lesson.title, slug=lesson.slug, origin=origin))
    return written + [note]
