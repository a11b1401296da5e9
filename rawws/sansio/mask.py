"""The one masking function (RFC 6455 §5.3).

Owns: XOR of a payload with a 4-byte masking key. Masking and unmasking are the same operation.

RFC 6455 §5.3: octet i of the transformed data is the XOR of octet i of the original data with
octet at index i modulo 4 of the masking key.

:func:`apply_mask` is the optional C accelerator (``_speedups.c``, built when a compiler is
there) when it is present, and :func:`apply_mask_python` otherwise. The pure-Python function is
the reference: a property test checks that both give identical bytes for every length and
offset. ``RAWWS_PURE_PYTHON=1`` in the environment keeps the accelerator unused (read once, at
import); :data:`ACCELERATED` says which one runs.

Pure Python is written for speed (benchmark: ``benchmarks/micro.py``, section "mask"). Two
strategies run in C underneath, and each wins on a different side of about 4 KiB here:

* small payloads: one big-integer XOR (``int.from_bytes`` of the data and of the repeated key);
* large payloads: ``bytes.translate`` with a precomputed XOR table for each of the four key bytes,
  applied to the four strided lanes ``data[i::4]`` (~1.1 GB/s, about twice the big-int path).

It cannot go much faster than that, and the standard library has no C XOR: the accelerator
masks at memory speed (tens of GB/s), which is what large messages need (benchmarks/README.md,
64 KiB and 1 MiB echo).
"""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = ["ACCELERATED", "apply_mask", "apply_mask_python"]

# Crossover measured with benchmarks/micro.py: int XOR is faster below, translate above.
_TRANSLATE_THRESHOLD = 4096

# _REPUNITS[q] = 1 + 2**32 + ... + 2**(32*(q-1)): multiplied by a 4-byte key, the key repeated.
# Read from bytes, each in one C call (summing powers of two cost 155 ms at import).
_REPUNITS: tuple[int, ...] = tuple(
    int.from_bytes(b"\x01\x00\x00\x00" * q, "little")
    for q in range((_TRANSLATE_THRESHOLD >> 2) + 2)
)

# _XOR_TABLES[b] maps every byte x to x ^ b. 256 tables of 256 bytes, built once at import.
_XOR_TABLES: tuple[bytes, ...] = tuple(bytes(x ^ b for x in range(256)) for b in range(256))


def apply_mask_python(data: bytes | bytearray | memoryview, masking_key: bytes) -> bytes:
    """Return ``data`` XORed with the repeated 4-byte ``masking_key``, as new ``bytes``."""
    n = len(data)
    if n < _TRANSLATE_THRESHOLD:
        if n == 0:
            return b""
        # The key repeated over q words is key * (1 + 2**32 + 2**64 + ...): no carries, since
        # the key is under 2**32. The XOR runs on whole words; the result is cut to n bytes.
        q = (n + 3) >> 2
        x = int.from_bytes(data, "little") ^ int.from_bytes(masking_key, "little") * _REPUNITS[q]
        return x.to_bytes(q << 2, "little")[:n]
    if isinstance(data, memoryview):
        data = data.tobytes()
    out = bytearray(n)
    tables = _XOR_TABLES
    out[0::4] = data[0::4].translate(tables[masking_key[0]])
    out[1::4] = data[1::4].translate(tables[masking_key[1]])
    out[2::4] = data[2::4].translate(tables[masking_key[2]])
    out[3::4] = data[3::4].translate(tables[masking_key[3]])
    return bytes(out)


Mask = Callable[[bytes | bytearray | memoryview, bytes], bytes]


def _accelerator() -> Mask | None:
    if os.environ.get("RAWWS_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        from ._speedups import apply_mask as accelerated
    except ImportError:  # not built: no compiler, or a pure-Python install
        return None
    return accelerated


_accelerated = _accelerator()
#: Whether :func:`apply_mask` is the C accelerator.
ACCELERATED = _accelerated is not None
#: The masking function: the accelerator if built (and not disabled), else the reference.
apply_mask: Mask = _accelerated if _accelerated is not None else apply_mask_python
