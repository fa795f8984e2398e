"""Fixtures of the reflection tests: a scripted OpenAI-compatible server on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import pytest
import torch
from reflection_server import Reply, Responder, ScriptedChatServer, valid_reply


@pytest.fixture
def chat_server() -> Iterator[Callable[..., ScriptedChatServer]]:
    """Start scripted servers; all are shut down at the end of the test."""
    servers: list[ScriptedChatServer] = []

    def start(
        script: Sequence[Reply | Responder] = (), default: Responder = valid_reply
    ) -> ScriptedChatServer:
        server = ScriptedChatServer(script, default)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def single_thread() -> Iterator[None]:
    """One intra-op torch thread: on a shared 2-core machine, two make decoding ~10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
