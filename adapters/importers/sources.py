"""Where records come from: one file, a folder of shards or a glob, read record by record.

A file holds JSON Lines (one record per line; ``.jsonl``, ``.ndjson``, and ``.json`` files that
do not start with ``[``) or one JSON array of records (read whole, so keep large exports in
JSON Lines). Any of them may be gzip-compressed (``.gz``). A line that is not valid JSON is
reported with its file and line number and skipped; reading goes on.
"""

from __future__ import annotations

import glob
import gzip
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from hero_agents.errors import ConfigError, TraceFormatError
from hero_agents.storage import parse_json_line

SUFFIXES = (".jsonl", ".ndjson", ".json")
"""Record files a folder or glob contributes (each also as ``.gz``)."""


@dataclass(frozen=True)
class RawRecord:
    """One parsed record and where it was read: ``file:line`` or ``file[index]``."""

    location: str
    value: Any
    size: int
    """Bytes it took in its file (for progress)."""


@dataclass(frozen=True)
class BadRecord:
    """A record that could not be parsed, and why."""

    location: str
    message: str
    size: int


def parse_json(data: bytes, where: str) -> Any:
    """JSON with orjson (several times faster), or with the standard library for what orjson
    refuses but JSON allows (integers beyond 64 bits); what neither can read (bad JSON,
    nesting too deep, an unpaired surrogate) is a `TraceFormatError` naming `where`."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return parse_json_line(data, where)


def _is_record_file(path: Path) -> bool:
    name = path.name.removesuffix(".gz")
    return path.is_file() and name.endswith(SUFFIXES)


def expand_sources(src: str | os.PathLike[str]) -> list[Path]:
    """The record files `src` names: a file, every record file under a folder (recursively),
    or the files a glob pattern matches; sorted, so shards are read in a stable order."""
    text = os.fspath(src)
    path = Path(text)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if _is_record_file(p))
        if not files:
            raise ConfigError(f"{path}: no {', '.join(SUFFIXES)} files (or .gz) in this folder")
        return files
    if glob.has_magic(text):
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
        if not files:
            raise ConfigError(f"{text}: the pattern matches no files")
        return files
    raise ConfigError(f"{text}: no such file, folder or glob pattern")


def total_bytes(paths: list[Path]) -> int:
    """Their size on disk (compressed size for ``.gz``), for a progress bar."""
    return sum(path.stat().st_size for path in paths)


def _open(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return path.open("rb")


def _first_character(path: Path) -> bytes:
    with _open(path) as handle:
        while chunk := handle.read(4096):
            stripped = chunk.lstrip()
            if stripped:
                return stripped[:1]
    return b""


_UNREADABLE = (OSError, EOFError, zlib.error)
"""What a corrupt or truncated ``.gz`` file raises while it is read (`gzip.BadGzipFile` is an
`OSError`)."""


def read_records(path: Path) -> Iterator[RawRecord | BadRecord]:
    """Every record of `path` in order; unparsable ones as `BadRecord`, never raised. A file
    that cannot be read on (a corrupt ``.gz``) ends with one `BadRecord` saying so."""
    try:
        first = _first_character(path)
    except _UNREADABLE as error:
        yield BadRecord(str(path), f"cannot read the file ({error})", path.stat().st_size)
        return
    if first == b"[":
        yield from _read_array(path)
        return
    number = 0
    try:
        with _open(path) as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                location = f"{path}:{number}"
                try:
                    yield RawRecord(location, parse_json(line, location), len(line))
                except TraceFormatError as error:
                    yield BadRecord(location, str(error).removeprefix(f"{location}: "), len(line))
    except _UNREADABLE as error:
        yield BadRecord(f"{path}:{number + 1}", f"cannot read the file on ({error})", 0)


def _read_array(path: Path) -> Iterator[RawRecord | BadRecord]:
    try:
        with _open(path) as handle:
            data = handle.read()
    except _UNREADABLE as error:
        yield BadRecord(str(path), f"cannot read the file ({error})", path.stat().st_size)
        return
    try:
        values = parse_json(data, str(path))
    except TraceFormatError as error:
        yield BadRecord(str(path), f"not a valid JSON array ({error})", len(data))
        return
    size = len(data) // max(1, len(values))
    for index, value in enumerate(values):
        yield RawRecord(f"{path}[{index}]", value, size)
