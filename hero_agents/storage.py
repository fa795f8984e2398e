"""JSONL storage of trajectories: one trajectory per line, schema-versioned, written atomically.

Appends go through one ``write(2)`` per record on an ``O_APPEND`` descriptor, and a writer
that was killed mid-line leaves a torn tail that the next `TrajectoryWriter` cuts off before
appending, so readers only ever see whole lines. Whole-file writes go to a temporary file
that replaces the target in one rename.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from hero_agents.errors import TraceFormatError
from hero_agents.trajectory import Trajectory

if TYPE_CHECKING:
    import datasets


def _encode(trajectory: Trajectory) -> bytes:
    return (trajectory.model_dump_json(exclude_none=False) + "\n").encode("utf-8")


def _cut_torn_tail(fd: int) -> None:
    """Truncate a last line that has no newline (left by a writer killed mid-write)."""
    size = os.fstat(fd).st_size
    if size == 0:
        return
    position = size
    chunk = 1 << 16
    while position > 0:
        start = max(0, position - chunk)
        data = os.pread(fd, position - start, start)
        if position == size and data.endswith(b"\n"):
            return
        newline = data.rfind(b"\n")
        if newline >= 0:
            os.ftruncate(fd, start + newline + 1)
            return
        position = start
    os.ftruncate(fd, 0)


class TrajectoryWriter:
    """Appends trajectories to a JSONL file, one whole line per trajectory.

    Use as a context manager; each `write` is durable once it returns when ``fsync=True``.
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        _cut_torn_tail(self._fd)

    def write(self, trajectory: Trajectory) -> None:
        data = memoryview(_encode(trajectory))
        while data:
            written = os.write(self._fd, data)
            data = data[written:]
        if self._fsync:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> TrajectoryWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def write_json_atomic(path: Path, data: Any) -> None:
    """Write `data` as JSON to `path` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, default=str)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any:
    """A JSON file's content."""
    return json.loads(path.read_text(encoding="utf-8"))


def write_trajectories(path: str | os.PathLike[str], trajectories: Iterable[Trajectory]) -> int:
    """Write a whole file atomically (temporary file + rename); returns the count written."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            for trajectory in trajectories:
                handle.write(_encode(trajectory))
                count += 1
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def parse_json_line(raw: bytes, where: str) -> Any:
    """One JSON value from a line of a file; anything unreadable is a `TraceFormatError`
    naming `where` (file and line): bad JSON, nesting too deep to parse, or a string holding
    an unpaired surrogate (which no UTF-8 file, cache key or tokenizer can carry)."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as error:
        raise TraceFormatError(f"{where}: not valid JSON ({error.msg})") from None
    except UnicodeDecodeError as error:
        raise TraceFormatError(f"{where}: not UTF-8 ({error.reason})") from None
    except RecursionError:
        raise TraceFormatError(f"{where}: JSON nested too deeply to read") from None
    if _SURROGATE_ESCAPE.search(raw):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise TraceFormatError(
                f"{where}: a string holds an unpaired UTF-16 surrogate (e.g. \\ud800), "
                "which is not text"
            ) from None
    return value


def iter_trajectories(
    path: str | os.PathLike[str], *, torn_tail: Literal["error", "skip"] = "error"
) -> Iterator[Trajectory]:
    """Read trajectories lazily; a bad line raises `TraceFormatError` naming file and line.

    With ``torn_tail="skip"``, a last line without a newline (left by a writer killed
    mid-write, which the next writer cuts) is ignored instead.
    """
    source = Path(path)
    if not source.exists():
        raise TraceFormatError(f"{source}: no such trace file")
    if source.is_dir():
        raise TraceFormatError(f"{source} is a folder, not a trace file")
    with source.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            where = f"{source}:{number}"
            if not raw.endswith(b"\n"):
                if torn_tail == "skip":
                    return
                where += " (last line has no newline: was its writer killed?)"
            record = parse_json_line(raw, where)
            if not isinstance(record, dict):
                raise TraceFormatError(
                    f"{where}: expected a JSON object, got {type(record).__name__}"
                )
            version = record.get("schema_version")
            if version is None:
                raise TraceFormatError(f"{where}: missing 'schema_version'")
            try:
                yield Trajectory.model_validate(record)
            except ValidationError as error:
                first = error.errors()[0]
                location = ".".join(str(part) for part in first["loc"]) or "record"
                raise TraceFormatError(f"{where}: {location}: {first['msg']}") from None


def read_whole_lines(path: Path | None) -> list[Trajectory]:
    """The whole trajectories of a file being appended to ([] when it does not exist): a torn
    last line, left by a killed writer, is skipped (the next writer cuts it)."""
    if path is None or not path.exists():
        return []
    return list(iter_trajectories(path, torn_tail="skip"))


def read_trajectories(path: str | os.PathLike[str]) -> list[Trajectory]:
    """Read every trajectory of a JSONL file."""
    return list(iter_trajectories(path))


def to_dataset(trajectories: Iterable[Trajectory]) -> datasets.Dataset:
    """One row per turn, with messages, tools and action as JSON strings (stable schema)."""
    import datasets

    rows: list[dict[str, Any]] = []
    for trajectory in trajectories:
        diagnoses = {d.turn_index: d for d in trajectory.diagnoses or []}
        for turn in trajectory.turns:
            diagnosis = diagnoses.get(turn.index)
            rows.append(
                {
                    "trajectory_id": trajectory.id,
                    "task_id": trajectory.task_id,
                    "turn_index": turn.index,
                    "node": turn.node,
                    "messages": json.dumps(turn.messages),
                    "tools": json.dumps(turn.tools),
                    "action": json.dumps(turn.action),
                    "observation": json.dumps(turn.observation),
                    "reward": trajectory.reward,
                    "hint": diagnosis.hint if diagnosis else None,
                }
            )
    return datasets.Dataset.from_list(rows)
