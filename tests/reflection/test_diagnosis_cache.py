"""The disk cache of diagnoses."""

from __future__ import annotations

from pathlib import Path

from hero_agents.reflection.cache import DiagnosisCache, cache_key, default_cache_dir
from hero_agents.trajectory import Diagnosis


def diagnosis(i: int) -> Diagnosis:
    return Diagnosis(turn_index=i, necessity="necessary", validity="valid", hint="h", reflector="r")


def test_round_trip_and_keys(tmp_path: Path) -> None:
    cache = DiagnosisCache(tmp_path)
    key = cache_key({"model": "m", "temperature": 0}, "episode")
    assert cache.get(key) is None
    cache.put(key, [diagnosis(0), diagnosis(1)])
    assert cache.get(key) == [diagnosis(0), diagnosis(1)]
    assert cache_key({"temperature": 0, "model": "m"}, "episode") == key
    assert cache_key({"model": "m", "temperature": 1}, "episode") != key
    assert cache_key({"model": "m", "temperature": 0}, "episode!") != key
    assert not list(tmp_path.rglob("*.tmp"))


def test_unreadable_entry_is_a_miss(tmp_path: Path) -> None:
    cache = DiagnosisCache(tmp_path)
    key = cache_key({}, "x")
    cache.put(key, [diagnosis(0)])
    next(tmp_path.rglob(f"{key}.json")).write_text("{torn")
    assert cache.get(key) is None


def test_default_directory_follows_hero_cache(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HERO_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "reflections"
    monkeypatch.delenv("HERO_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "hero-agents" / "reflections"
