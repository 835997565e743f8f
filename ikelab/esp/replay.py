"""The anti-replay window of an inbound SA (RFC 4303 §3.4.3 and Appendix A)."""

from __future__ import annotations


class ReplayWindow:
    """The highest sequence number accepted so far and a bitmap of which of the `size` numbers
    ending there have arrived: bit i stands for `top - i`. Numbers above `top` are always new;
    numbers that fell off the left edge are refused, since they can no longer be told apart
    from replays.

    `top`, `bitmap` and `mask` are plain attributes so that a loop over a batch of packets
    (InboundSa.decapsulate_batch) can carry them in local variables and store them back."""

    def __init__(self, size: int = 64) -> None:
        if size < 1:
            raise ValueError(f"a replay window holds at least 1 packet, got {size}")
        self.size = size
        self.top = 0  # no packet yet: sequence numbers start at 1
        self.bitmap = 0
        self.mask = (1 << size) - 1

    def check(self, seq: int) -> bool:
        """Whether a packet with this number would be accepted (call before verifying its ICV)."""
        if seq > self.top:
            return True
        offset = self.top - seq
        return seq != 0 and offset < self.size and not (self.bitmap >> offset) & 1

    def update(self, seq: int) -> None:
        """Record an accepted packet (call only after its ICV verified and `check` passed)."""
        if seq > self.top:
            shift = seq - self.top
            # A jump of a whole window or more forgets everything: no giant shift needed.
            self.bitmap = ((self.bitmap << shift) | 1) & self.mask if shift < self.size else 1
            self.top = seq
            return
        offset = self.top - seq
        if seq == 0 or offset >= self.size:
            raise ValueError(f"sequence number {seq} is outside the window: check() refuses it")
        self.bitmap |= 1 << offset

    def explain(self, seq: int) -> str:
        """Why `check(seq)` is false, in words."""
        if seq == 0:
            return "sequence number 0 is never sent (numbering starts at 1)"
        if self.top - seq >= self.size:
            return (
                f"sequence number {seq} is older than the window "
                f"{self.top - self.size + 1}..{self.top} of {self.size}"
            )
        return f"sequence number {seq} was already received (replay)"

    def received(self) -> list[int]:
        """The numbers inside the window that have arrived, highest first (for display)."""
        return [self.top - i for i in range(min(self.size, self.top)) if (self.bitmap >> i) & 1]
