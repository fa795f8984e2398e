"""Grouping on disk: every key's payloads together and in order, whatever the input order,
with partitions re-split when they exceed the memory budget."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from hero_agents.adapters.importers.grouping import SpillGrouper


def test_groups_hold_each_keys_payloads_in_order(tmp_path: Path) -> None:
    rng = random.Random(3)
    keys = [f"trace-{i}" for i in range(300)]
    added: dict[str, list[dict]] = {key: [] for key in keys}
    grouper = SpillGrouper(tmp_path / "spill", memory_bytes=1 << 20, partitions=8)
    for position in range(3000):
        key = rng.choice(keys)
        payload = {"position": position, "text": "x" * rng.randint(0, 40), "nested": [key]}
        added[key].append(payload)
        grouper.add(key, payload)

    groups = dict(grouper.groups())
    assert groups == {key: payloads for key, payloads in added.items() if payloads}
    assert grouper.added == 3000
    assert not list((tmp_path / "spill").iterdir())  # partitions are removed as they are read


def test_partitions_over_budget_are_split_before_they_are_read(tmp_path: Path) -> None:
    grouper = SpillGrouper(tmp_path / "spill", memory_bytes=4096, partitions=2)
    for position in range(2000):
        grouper.add(f"k{position % 97}", [position, "payload"])
    sizes_before = sorted(p.stat().st_size for p in (tmp_path / "spill").iterdir())
    assert sizes_before[-1] > 4096  # so each partition must be split to fit

    seen_files: set[str] = set()
    groups = {}
    for key, payloads in grouper.groups():
        seen_files.update(p.name for p in (tmp_path / "spill").iterdir())
        groups[key] = payloads
    assert any(name.count(".") > 1 for name in seen_files)  # p0.3.tsv: a split partition
    assert len(groups) == 97
    assert groups["k5"] == [[p, "payload"] for p in range(5, 2000, 97)]


def test_a_budget_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="memory_bytes"):
        SpillGrouper(tmp_path, memory_bytes=0)
