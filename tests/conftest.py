"""Shared helpers: lesson 1 with changes, and a run of two peers to the end."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from ikelab.crypto.names import parse_proposal
from ikelab.lab.session import Session
from ikelab.lab.transports import LoopbackTransport, MemoryTransport
from ikelab.lessons import load_lesson
from ikelab.trace import MessageEvent, NoteEvent


def lesson_with(left: dict | None = None, right: dict | None = None, both: dict | None = None):
    """Lesson 1 with settings replaced; proposals may be given as strongSwan keyword strings."""
    lesson = load_lesson("ikev2-psk")

    def change(peer, values):
        values = dict(values or {})
        for key in ("ike", "esp"):
            if isinstance(values.get(key), (str, list)):
                texts = [values[key]] if isinstance(values[key], str) else values[key]
                values[key] = tuple(parse_proposal(t, ike=key == "ike") for t in texts)
        return dataclasses.replace(peer, **values)

    return dataclasses.replace(
        lesson,
        left=change(change(lesson.left, both), left),
        right=change(change(lesson.right, both), right),
    )


def run(lesson=None, seed: int | None = 1, transport: str = "memory", transport_obj=None) -> Session:
    lesson = lesson or load_lesson("ikev2-psk")
    if transport_obj is None:
        if transport == "loopback":
            transport_obj = LoopbackTransport([p.name for p in lesson.peers])
        else:
            transport_obj = MemoryTransport.for_lesson(lesson)
    session = Session(lesson, transport_obj, seed=seed)
    try:
        session.run()
    finally:
        transport_obj.close()
    assert_no_internal_error(session)
    return session


def assert_no_internal_error(session: Session) -> None:
    broken = [e.text for e in session.trace.of(NoteEvent) if e.text.startswith("internal error")]
    assert not broken, broken


def messages(session: Session, direction: str = "sent") -> list[MessageEvent]:
    return [e for e in session.trace.of(MessageEvent) if e.direction == direction]


def needs_tshark():
    return pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (scripts/setup.sh installs it)")


def lab_can_run() -> str | None:
    from ikelab.lab.lab import missing_privileges

    return missing_privileges()


def needs_lab():
    reason = lab_can_run()
    return pytest.mark.skipif(reason is not None, reason=f"the namespace lab cannot run here: {reason}")


@pytest.fixture(scope="session", autouse=True)
def no_namespace_left_behind():
    """After the whole suite, no namespace of this test process may remain."""
    yield
    if lab_can_run() is None:
        import os

        from ikelab.lab.netns import ikelab_namespaces

        ours = [n for n in ikelab_namespaces() if n.startswith(f"ikelab-{os.getpid()}x")]
        assert not ours, f"namespaces left behind: {ours}"


def tcp_stream_through_lab(lab, payload: bytes) -> bytes:
    """Send `payload` over one TCP connection from 198.51.100.1 (left) to 203.0.113.1 (right)
    through the lab's tunnel; the SHA-256 of what the right side received."""
    import hashlib
    import socket
    import threading

    from ikelab.lab.netns import in_namespace

    server = in_namespace(lab.namespaces["right"], lambda: socket.create_server(("203.0.113.1", 0)))
    received = hashlib.sha256()

    def serve():
        connection, _ = server.accept()
        with connection:
            while chunk := connection.recv(1 << 16):
                received.update(chunk)

    reader = threading.Thread(target=serve)
    reader.start()
    client = in_namespace(lab.namespaces["left"], lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    try:
        client.settimeout(20)
        client.bind(("198.51.100.1", 0))
        client.connect(("203.0.113.1", server.getsockname()[1]))
        client.sendall(payload)
    finally:
        client.close()
        reader.join(20)
        server.close()
    return received.digest()
