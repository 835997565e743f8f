"""Display strings for decoded values: names instead of numbers, addresses instead of hex."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from enum import IntEnum
from functools import cache, partial

from .ikev2_constants import HeaderFlags, PayloadType, ProtocolId, name_of


@cache  # one function per enum, made once, however often decoders ask for it
def enum_display(cls: type[IntEnum]) -> Callable[[object], str]:
    return partial(name_of, cls)


def payload_type_display(value: object) -> str:
    return f"{name_of(PayloadType, value)} ({value})"


def flags_display(value: object) -> str:
    names = [
        n
        for flag, n in ((HeaderFlags.INITIATOR, "I"), (HeaderFlags.VERSION, "V"), (HeaderFlags.RESPONSE, "R"))
        if value & flag
    ]
    return ", ".join(names) or "none"


def protocol_display(value: object) -> str:
    return "none" if value == 0 else name_of(ProtocolId, value)


def ip_display(value: object) -> str:
    return str(ipaddress.ip_address(value)) if len(value) in (4, 16) else value.hex()
