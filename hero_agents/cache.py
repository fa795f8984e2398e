"""hero-agents' on-disk cache: where it lives, and how an entry is built exactly once.

The cache holds the converted default model (``models/``), warm starts (``warmups/``) and
reflector replies (``reflections/``). Its root is ``$HERO_CACHE``, else
``$XDG_CACHE_HOME/hero-agents``, else ``~/.cache/hero-agents``.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def hero_cache_dir() -> Path:
    """The cache root (see the module docstring)."""
    if os.environ.get("HERO_CACHE"):
        return Path(os.environ["HERO_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "hero-agents"


def build_once(target: Path, build: Callable[[Path], None]) -> Path:
    """Return `target`, first running ``build(folder)`` into a scratch folder renamed to
    `target` if it does not exist yet.

    Concurrent callers (threads or processes) wait on a file lock. An interrupted build leaves
    no partial `target`; scratch folders left by a killed build (``kill -9``) are removed by
    the next build of the same target, which holds the lock.
    """
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(target.with_name(target.name + ".lock")):
        if target.is_dir():
            return target
        for stale in target.parent.glob(f".{target.name}.*"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            build(scratch)
            scratch.rename(target)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
    return target


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
