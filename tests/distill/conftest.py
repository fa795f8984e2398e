"""Fixtures of the distillation tests: the tiny model's tokenizer, and a tiny model trained to
follow hindsight notes (the teacher of the learning tests).

The tiny model's matrices are too small for two threads to pay off, and on a busy machine
torch's spinning threads cost several times the work: these tests run on one thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
from distill_helpers import train_note_following_model
from transformers import AutoTokenizer


@contextmanager
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with one_thread():
        yield


@pytest.fixture(scope="session")
def tokenizer(tiny_model_dir: Path) -> Any:
    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="session")
def note_following_model_dir(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """See `train_note_following_model`."""
    with one_thread():
        return train_note_following_model(tiny_model_dir, tmp_path_factory.mktemp("note-following"))
