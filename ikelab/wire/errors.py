"""Decode errors that say where the bytes went wrong, so a failure can be shown on the byte view."""

from __future__ import annotations


class DecodeError(ValueError):
    """Malformed input: names the payload, the field and the absolute offset."""

    def __init__(self, reason: str, *, payload: str, field: str, offset: int) -> None:
        super().__init__(f"{payload}, field '{field}' at offset {offset}: {reason}")
        self.reason = reason
        self.payload = payload
        self.field = field
        self.offset = offset


class UnsupportedCriticalPayload(DecodeError):
    """RFC 7296 §2.5: an unknown payload with the critical bit set rejects the whole message."""

    def __init__(self, reason: str, *, payload: str, field: str, offset: int, payload_type: int) -> None:
        super().__init__(reason, payload=payload, field=field, offset=offset)
        self.payload_type = payload_type


class UnsupportedVersion(DecodeError):
    """Major version other than 2; the engine answers INVALID_MAJOR_VERSION (RFC 7296 §2.5)."""

    def __init__(self, reason: str, *, payload: str, field: str, offset: int, major: int) -> None:
        super().__init__(reason, payload=payload, field=field, offset=offset)
        self.major = major
