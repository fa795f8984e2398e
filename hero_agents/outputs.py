"""Where commands write: one set of rules for output files and folders, used by every command.

- An output is never one of the command's inputs (`check_not_input`).
- An existing output file is refused unless ``--append`` (resume: records whose stable id is
  already in it are skipped) or ``--overwrite`` (replace it, once every other check passed).
- An output folder is *ours* when it holds its kind's marker file (a run folder's
  ``config.yaml``, a comparison's ``compare.yaml``...). A folder that is not ours and not empty
  is refused, ``--overwrite`` or not; ``--overwrite`` of one of ours removes only the entries
  that kind of folder writes, and refuses (naming them) if the folder holds anything else.
"""

from __future__ import annotations

import fnmatch
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hero_agents.errors import OutputError

WriteMode = Literal["new", "append", "overwrite"]


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return a.resolve() == b.resolve()


def check_not_input(out: Path, inputs: Iterable[Path], *, flag: str = "--out") -> None:
    """Refuse an output that is one of the inputs (or an input's folder)."""
    for source in inputs:
        if _same(out, source) or (out.is_dir() and source.resolve().is_relative_to(out.resolve())):
            raise OutputError(f"{flag} {out} is also an input ({source}): choose another {flag}")


def write_mode(*, append: bool, overwrite: bool) -> WriteMode:
    """The mode two ``--append`` / ``--overwrite`` flags ask for."""
    if append and overwrite:
        raise OutputError("pass at most one of --append and --overwrite")
    return "append" if append else "overwrite" if overwrite else "new"


def check_output_file(
    path: Path,
    *,
    mode: WriteMode,
    inputs: Sequence[Path] = (),
    flag: str = "--out",
) -> None:
    """Check that `path` can take a command's records in `mode`; changes nothing on disk."""
    check_not_input(path, inputs, flag=flag)
    if path.is_dir():
        raise OutputError(f"{flag} {path} is a folder: give the path of a file")
    if path.exists() and mode == "new":
        raise OutputError(
            f"{path} exists: pass --append to add to it (records already in it are skipped) "
            "or --overwrite to replace it"
        )
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{flag} {path}: {parent} is a file, not a folder")


def start_output_file(path: Path, *, mode: WriteMode) -> None:
    """Make `path` ready to be appended to: replace it in ``overwrite`` mode (call this last,
    after every other check, so a typo never costs the old file)."""
    if mode == "overwrite":
        path.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True)
class FolderKind:
    """A kind of output folder: its marker file and the entries it writes (glob patterns)."""

    name: str
    """What it is called in messages, e.g. ``"run folder"``."""
    marker: str
    owned: tuple[str, ...]

    def is_ours(self, folder: Path) -> bool:
        return (folder / self.marker).is_file()

    def foreign_entries(self, folder: Path, extra: Iterable[str] = ()) -> list[str]:
        """Top-level entries of `folder` this kind does not write."""
        patterns = (self.marker, *self.owned, *extra)
        return sorted(
            entry.name
            for entry in folder.iterdir()
            if not any(fnmatch.fnmatch(entry.name, pattern) for pattern in patterns)
        )


def claim_folder(
    folder: Path,
    kind: FolderKind,
    *,
    overwrite: bool,
    inputs: Sequence[Path] = (),
    extra_owned: Iterable[str] = (),
    flag: str = "--out",
) -> bool:
    """Make `folder` usable as a `kind` folder; returns True when it is one of ours to resume.

    A missing or empty folder is created (False). One of ours is resumed (True), or with
    `overwrite` emptied of what it wrote (False) unless it holds other entries. A non-empty
    folder that is not ours is refused, `overwrite` or not. `extra_owned` adds patterns the
    folder's own config names (a comparison's method folders).
    """
    check_not_input(folder, inputs, flag=flag)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{flag} {folder} is a file: give a folder")
    if not folder.exists() or not any(folder.iterdir()):
        folder.mkdir(parents=True, exist_ok=True)
        return False
    if not kind.is_ours(folder):
        raise OutputError(
            f"{folder} exists and is not a {kind.name} (no {kind.marker}): hero never deletes "
            f"what it did not write; choose another {flag}"
        )
    if not overwrite:
        return True
    foreign = kind.foreign_entries(folder, extra_owned)
    if foreign:
        raise OutputError(
            f"{folder} holds files hero did not write ({', '.join(foreign[:5])}"
            f"{', ...' if len(foreign) > 5 else ''}): move them away or choose another {flag}"
        )
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return False
