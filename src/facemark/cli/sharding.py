"""Split a batch of inputs between N machines without coordination: `--shard I/N`.

Each input belongs to exactly one shard, chosen by a stable hash (CRC-32) of its name: the path string as the
command sees it (for `predict`, the path as listed from the inputs given on the command line; for `label`, the
path relative to the images folder). The same name lands in the same shard on every machine and in every run,
so machine I of N runs the same command with `--shard I/N` and nothing else needs to be shared.
"""

from __future__ import annotations

import re
import zlib

_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


def parse_shard(text: str) -> tuple[int, int]:
    """'I/N' -> (I, N), with 0 <= I < N; ValueError with the reason otherwise."""
    match = _SHARD.fullmatch(str(text))
    if match is None:
        raise ValueError(f"bad shard {text!r}: expected I/N, e.g. 0/4 (shard I of N, counted from 0)")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1:
        raise ValueError(f"bad shard {text!r}: the number of shards N must be at least 1")
    if index >= count:
        raise ValueError(f"bad shard {text!r}: the shard index must be 0 .. {count - 1} (counted from 0)")
    return index, count


def shard_of(name: str, count: int) -> int:
    """The shard (0 .. count-1) that `name` belongs to: CRC-32 of its UTF-8 bytes, modulo `count`."""
    return zlib.crc32(str(name).encode("utf-8", "surrogateescape")) % count


def in_shard(name: str, index: int, count: int) -> bool:
    """Whether `name` belongs to shard `index` of `count`."""
    if not 0 <= index < count:
        raise ValueError(f"shard {index}/{count}: expected 0 <= index < count")
    return shard_of(name, count) == index

