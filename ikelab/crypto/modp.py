"""The MODP primes of RFC 2409 §6 and RFC 3526, computed from their defining formula.

    p = 2^n - 2^(n-64) - 1 + 2^64 * ( floor(2^(n-130) * pi) + k )

The high and low 64 bits are all ones; the middle is the binary expansion of pi, nudged
by k so that p and (p-1)/2 are both prime. Computing p (rather than pasting hex) lets a
student see where the "nothing up my sleeve" numbers come from.
"""

from __future__ import annotations

from functools import cache

GENERATOR = 2

# Bits -> k from the RFCs.
_K = {
    768: 149686,
    1024: 129093,
    1536: 741804,
    2048: 124476,
    3072: 1690314,
    4096: 240904,
    6144: 929484,
    8192: 4743158,
}

# Bits of private exponent: the upper end of the "exponent size" column in RFC 3526 §8
# (2409's groups are not in that table; 256 bits comfortably exceeds their strength).
EXPONENT_BITS = {
    768: 256,
    1024: 256,
    1536: 240,
    2048: 320,
    3072: 420,
    4096: 480,
    6144: 540,
    8192: 620,
}

_GUARD_BITS = 64  # extra precision so the floor of the truncated pi is exact


@cache
def modp_prime(bits: int) -> int:
    """The RFC prime of the given size."""
    k = _K[bits]
    pi_scaled = _pi_fixed(bits - 130 + _GUARD_BITS) >> _GUARD_BITS
    p: int = 2**bits - 2 ** (bits - 64) - 1 + 2**64 * (pi_scaled + k)
    return p


@cache
def _pi_fixed(frac_bits: int) -> int:
    """floor(pi * 2^frac_bits), up to a few units in the last place (Machin's formula)."""
    one = 1 << frac_bits
    return 16 * _arctan_inverse(5, one) - 4 * _arctan_inverse(239, one)


def _arctan_inverse(x: int, one: int) -> int:
    """arctan(1/x) * one, by the alternating Taylor series in integer arithmetic."""
    total = term = one // x
    x_squared = x * x
    n, sign = 3, -1
    while term:
        term //= x_squared
        total += sign * (term // n)
        n, sign = n + 2, -sign
    return total
