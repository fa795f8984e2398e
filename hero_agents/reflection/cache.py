"""A disk cache of diagnoses, keyed by what the reflector is shown and how it is set up.

The key hashes the rendered episode (every trace field the reflector sees, after length caps)
with the reflector's settings (kind, model, endpoint, prompt version, caps, sampling), so a
rerun on the same traces costs no call, and any change that could change a diagnosis misses.
Only complete diagnoses are stored; entries are written atomically, one file each. Secrets are
never part of a key or an entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hero_agents.cache import hero_cache_dir
from hero_agents.trajectory import Diagnosis

logger = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``reflections`` under hero-agents' cache (`hero_agents.cache.hero_cache_dir`)."""
    return hero_cache_dir() / "reflections"


def cache_key(settings: Mapping[str, Any], episode_text: str) -> str:
    """SHA-256 of the reflector settings and the rendered episode."""
    digest = hashlib.sha256()
    digest.update(json.dumps(dict(settings), sort_keys=True).encode("utf-8"))
    digest.update(b"\0")
    digest.update(episode_text.encode("utf-8"))
    return digest.hexdigest()


class DiagnosisCache:
    """Diagnoses stored under ``DIR/ab/abcdef....json``, one file per key."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> list[Diagnosis] | None:
        """The stored diagnoses, or None on a miss (an unreadable entry counts as a miss)."""
        path = self._path(key)
        try:
            record = json.loads(path.read_bytes())
            return [Diagnosis.model_validate(item) for item in record["diagnoses"]]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, ValidationError) as error:
            logger.warning("ignoring unreadable cache entry %s (%s)", path, error)
            return None

    def put(self, key: str, diagnoses: Sequence[Diagnosis]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps({"diagnoses": [d.model_dump() for d in diagnoses]}).encode("utf-8")
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
