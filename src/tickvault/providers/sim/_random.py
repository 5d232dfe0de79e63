"""Counter-based randomness: the same key and counter always give the same number.

The sim provider must give the same bar for the same (seed, symbol, timeframe, timestamp)
whatever range is asked for, so it cannot draw from a sequential generator: a number's
position in a stream would depend on where the request started. Instead every number is a
hash of its identity, computed for whole arrays at once with the SplitMix64 finaliser
(a bijective 64-bit mixer with full avalanche). Keys come from BLAKE2b of the identity
strings, so changing the seed, symbol, timeframe or stream name decorrelates everything.

Walks are accumulated on integers (:data:`WALK_SCALE` units per standard deviation) so
that a prefix sum is exact: subtracting the sum before a session gives the same result
whatever the array started with, which a floating-point ``cumsum`` does not.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["WALK_SCALE", "hash_key", "keyed", "mix64", "normals", "quantise", "uniforms"]

#: Integer units per standard deviation in quantised walks (2**20: resolution ~1e-6 sigma).
WALK_SCALE = float(1 << 20)

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_S32 = np.uint64(32)
_LOW32 = np.uint64(0xFFFFFFFF)
_TWO_PI = 2.0 * np.pi


def hash_key(*parts: object) -> np.uint64:
    """A 64-bit key from the identity ``parts`` (BLAKE2b, stable across runs and platforms)."""
    text = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return np.uint64(int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little"))


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser over a uint64 array (wrapping arithmetic, no warnings on arrays)."""
    z = np.asarray(x, dtype=np.uint64).copy()
    z ^= z >> _S30
    z *= _M1
    z ^= z >> _S27
    z *= _M2
    z ^= z >> _S31
    return z


def keyed(counter_hash: np.ndarray, key: np.uint64) -> np.ndarray:
    """Hash of (``key``, counter), given ``mix64(counter)`` precomputed once per counter."""
    return mix64(counter_hash ^ key)


def uniforms(h: np.ndarray) -> np.ndarray:
    """Uniform floats in ``[0, 1)`` from 64-bit hashes (top 53 bits)."""
    return (h >> _S11).astype(np.float64) * (1.0 / 9007199254740992.0)


def normals(h: np.ndarray) -> np.ndarray:
    """Standard normal floats from 64-bit hashes (Box-Muller on the two 32-bit halves)."""
    u1 = ((h >> _S32).astype(np.float64) + 0.5) * (1.0 / 4294967296.0)
    u2 = (h & _LOW32).astype(np.float64) * (1.0 / 4294967296.0)
    return np.asarray(np.sqrt(-2.0 * np.log(u1)) * np.cos(_TWO_PI * u2))


def quantise(z: np.ndarray) -> np.ndarray:
    """Normal draws as int64 walk increments (:data:`WALK_SCALE` per sigma)."""
    return np.rint(z * WALK_SCALE).astype(np.int64)
