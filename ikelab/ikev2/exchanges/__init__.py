"""One module per IKEv2 exchange, each with the initiator's and the responder's side."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ikelab.wire.ikev2 import NotifyPayload, SaPayload, TsPayload
from ikelab.wire.ikev2_constants import ExchangeType, NotifyType, name_of

if TYPE_CHECKING:
    from ikelab.ikev2.engine import Ikev2Peer, Received
    from ikelab.ikev2.ike_sa import IkeSa


IKE_AUTH = ExchangeType.IKE_AUTH  # read once: an enum member read from its class is a Python-level lookup


def dispatch_request(peer: "Ikev2Peer", sa: "IkeSa", request: "Received") -> None:
    """Hand a decrypted request to the exchange that answers it."""
    from ikelab.ikev2.exchanges import create_child_sa, ike_auth, informational

    exchange = request.header.exchange
    if exchange == IKE_AUTH:
        ike_auth.receive_request(peer, sa, request)
    elif exchange == ExchangeType.INFORMATIONAL:
        informational.receive_request(peer, sa, request)
    elif exchange == ExchangeType.CREATE_CHILD_SA:
        create_child_sa.receive_request(peer, sa, request)
    else:
        # RFC 7296 §1.5: an exchange type we do not know gets an error response, not silence.
        peer.note("warning", f"{name_of(ExchangeType, exchange)} is not supported: answering INVALID_SYNTAX")
        peer.send_response(sa, request.header, [NotifyPayload(NotifyType.INVALID_SYNTAX)])


def error_notifies(payloads: list) -> list[NotifyPayload]:
    """Notify payloads of the error range (types below 16384, RFC 7296 §3.10.1)."""
    return [p for p in payloads if isinstance(p, NotifyPayload) and p.notify_type < 16384]


def child_sa_payloads(payloads: list) -> tuple[SaPayload | None, TsPayload | None, TsPayload | None]:
    """The first SA, TSi and TSr payloads, found in one pass (rather than a generator for each)."""
    sa = tsi = tsr = None
    for p in payloads:
        if isinstance(p, SaPayload):
            if sa is None:
                sa = p
        elif isinstance(p, TsPayload):
            if p.initiator:
                if tsi is None:
                    tsi = p
            elif tsr is None:
                tsr = p
    return sa, tsi, tsr


def notify_name(n: NotifyPayload) -> str:
    return name_of(NotifyType, n.notify_type)
