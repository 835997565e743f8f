"""What an engine asks the world to do. Engines never do I/O; the lab carries these out.

Effects are values: nobody changes one after it is made. They are plain dataclasses rather than
frozen ones because an engine makes several per message, and a frozen dataclass sets each field
through object.__setattr__, which makes it about three times as costly to build.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Union

from ikelab.esp.sa import ChildSa


class Endpoint(NamedTuple):
    host: str
    port: int

    def __str__(self) -> str:
        return ENDPOINT_TEXT[self]


class _EndpointTexts(dict):
    """Endpoint -> "192.0.2.1:500" or "[2001:db8::1]:4500", written once per endpoint. Read by
    subscript (ENDPOINT_TEXT[endpoint]), a known text costs a dict lookup and no Python call: every
    message event names two endpoints, of a handful."""

    def __missing__(self, endpoint: Endpoint) -> str:
        if len(self) >= 1024:  # a long run with ever new ports: start again rather than grow
            self.clear()
        host, port = endpoint
        text = self[endpoint] = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return text


ENDPOINT_TEXT = _EndpointTexts()


@dataclass
class Send:
    """Send one UDP datagram from `src` to `dst`."""

    data: bytes
    src: Endpoint
    dst: Endpoint
    label: str  # "IKE_SA_INIT request" — for steppers and captures


@dataclass
class NatKeepalive(Send):
    """A NAT keepalive (RFC 3948 §2.3): the single byte 0xFF from our port 4500, sent without the
    non-ESP marker, so the NAT in front of us keeps its mapping while nothing else flows."""


@dataclass
class InstallChildSa:
    child: ChildSa


@dataclass
class DeleteChildSa:
    child: ChildSa


@dataclass
class IkeSaUp:
    """The IKE SA is established (both AUTHs verified)."""

    spi_i: bytes
    spi_r: bytes


@dataclass
class IkeSaFailed:
    """The IKE SA could not be set up or was torn down; `reason` says why in one sentence."""

    spi_i: bytes
    spi_r: bytes
    reason: str
    notify: str = ""  # the notify that carried or caused the failure, e.g. "AUTHENTICATION_FAILED"


# What a lesson, the TUI or a timer may ask a peer to start on its established IKE SA.
ACTIONS = ("create-child", "rekey-child", "rekey-ike", "delete-child", "delete-ike", "liveness")
# The ones an IKEv1 peer can do (Ikev1Peer._act): IKEv1 has no rekey exchange, a new quick mode or
# phase 1 replaces an SA.
IKEV1_ACTIONS = ("create-child", "delete-child", "delete-ike", "liveness")

Effect = Union[Send, NatKeepalive, InstallChildSa, DeleteChildSa, IkeSaUp, IkeSaFailed]
