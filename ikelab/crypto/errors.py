"""Errors shared by the algorithm tables (kept apart so every table can raise them)."""

from __future__ import annotations

from collections.abc import Iterable


class UnknownAlgorithm(KeyError):
    """An algorithm keyword or IANA number that ikelab does not support."""

    def __init__(self, kind: str, value: object, known: Iterable[object]) -> None:
        self.kind = kind
        self.value = value
        self.known = tuple(known)
        super().__init__(value)

    def __str__(self) -> str:
        # KeyError's own str() would only repr the key; say what is known instead.
        shown = repr(self.value) if isinstance(self.value, str) else str(self.value)
        known = ", ".join(str(k) for k in self.known)
        return f"unknown {self.kind} {shown} (known: {known})"
