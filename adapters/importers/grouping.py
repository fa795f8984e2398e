"""Grouping records by key (trace, thread) in bounded memory, whatever their order.

The records of one trace, or the traces of one thread, may be spread over a whole export and
interleaved with thousands of others, so no window of recent records can be trusted to hold
them all. `SpillGrouper` writes each payload to one of a fixed number of partition files on
disk, chosen by a hash of its key (so a key's payloads all land in the same file), and then
reads back one partition at a time. A partition larger than ``memory_bytes`` is split again by
a differently seeded hash before it is read, so what is held at once is about ``memory_bytes``
of records plus the largest single group, however many records there are.
"""

from __future__ import annotations

import json
import math
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from hero_agents.adapters.importers.sources import parse_json

_MAX_SPLITS = 4
"""Splits of an oversized partition before it is read anyway (then it is one huge group)."""
_MAX_FANOUT = 256


def _dump(payload: Any) -> bytes:
    try:
        return orjson.dumps(payload)
    except TypeError:  # what orjson cannot write but JSON can (integers beyond 64 bits)
        return json.dumps(payload, separators=(",", ":")).encode()


def _bucket(key: str, seed: int, buckets: int) -> int:
    return zlib.crc32(f"{seed}\0{key}".encode()) % buckets


class SpillGrouper:
    """Collects ``(key, payload)`` pairs on disk and yields each key's payloads together.

    Payloads must be JSON-serializable. Keys come out partition by partition (stable for a
    given input), each key's payloads in the order they were added. Use once: `add` every
    pair, then iterate `groups`; the files are removed as they are read.
    """

    def __init__(
        self, directory: str | os.PathLike[str], *, memory_bytes: int, partitions: int = 256
    ) -> None:
        if memory_bytes <= 0:
            raise ValueError(f"memory_bytes must be positive, got {memory_bytes}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.memory_bytes = memory_bytes
        self.partitions = partitions
        self.added = 0
        self._files: dict[int, IO[bytes]] = {}

    def add(self, key: str, payload: Any) -> None:
        index = _bucket(key, 0, self.partitions)
        handle = self._files.get(index)
        if handle is None:
            handle = (self.directory / f"p{index}.tsv").open("ab")
            self._files[index] = handle
        handle.write(orjson.dumps(key) + b"\t" + _dump(payload) + b"\n")
        self.added += 1

    def groups(self) -> Iterator[tuple[str, list[Any]]]:
        """Every key with its payloads, holding about ``memory_bytes`` of them at a time."""
        for handle in self._files.values():
            handle.close()
        paths = [self.directory / f"p{index}.tsv" for index in sorted(self._files)]
        self._files = {}
        for path in paths:
            yield from self._drain(path, depth=0)

    def _drain(self, path: Path, *, depth: int) -> Iterator[tuple[str, list[Any]]]:
        size = path.stat().st_size
        if size > self.memory_bytes and depth < _MAX_SPLITS:
            yield from self._split(path, size, depth=depth)
            return
        groups: dict[str, list[Any]] = {}
        with path.open("rb") as handle:
            for line in handle:
                key, payload = line.split(b"\t", 1)
                groups.setdefault(orjson.loads(key), []).append(parse_json(payload, "(spill file)"))
        path.unlink()
        while groups:
            key = next(iter(groups))
            yield key, groups.pop(key)

    def _split(self, path: Path, size: int, *, depth: int) -> Iterator[tuple[str, list[Any]]]:
        fanout = min(_MAX_FANOUT, math.ceil(size / self.memory_bytes) + 1)
        parts = [path.with_name(f"{path.stem}.{i}.tsv") for i in range(fanout)]
        handles = [part.open("wb") for part in parts]
        try:
            with path.open("rb") as source:
                for line in source:
                    key = orjson.loads(line.split(b"\t", 1)[0])
                    handles[_bucket(key, depth + 1, fanout)].write(line)
        finally:
            for handle in handles:
                handle.close()
        path.unlink()
        for part in parts:
            yield from self._drain(part, depth=depth + 1)

    def close(self) -> None:
        """Close any open partition file (after an error; `groups` closes them itself)."""
        for handle in self._files.values():
            handle.close()
        self._files = {}
