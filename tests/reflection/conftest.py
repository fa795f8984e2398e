"""Fixtures of the reflection tests: a scripted OpenAI-compatible server on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import pytest
import torch
from reflection_server import Reply, Responder, ScriptedChatServer, valid_reply

from hero_agents.trajectory import Trajectory


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


@pytest.fixture(scope="session")
def mock_episode() -> Trajectory:
    """A real episode of tau2's mock domain, played through the tool agent by a scripted policy:
    a good call, calls that break the tool schemas in each way, and a repeat."""
    from langchain_core.messages import AIMessage

    from hero_agents.adapters.envs import make_env
    from hero_agents.adapters.policy.testing import ScriptedChatModel
    from hero_agents.phases.rollout import cycling_slots, run_episodes

    def call(name: str, call_id: str, **arguments: object) -> dict:
        return {"name": name, "args": arguments, "id": call_id, "type": "tool_call"}

    policy = ScriptedChatModel(
        responses=[
            AIMessage("", tool_calls=[call("get_users", "c0")]),
            AIMessage("", tool_calls=[call("create_task", "c1", user_id="user_1", task_id="x")]),
            AIMessage("", tool_calls=[call("create_task", "c2", user_id=5, title="t")]),
            AIMessage("", tool_calls=[call("create_task", "c3", title="t")]),
            AIMessage(
                "", tool_calls=[call("update_task_status", "c4", task_id="task_1", status="done")]
            ),
            AIMessage("", tool_calls=[call("delete_task", "c5", task_id="task_1")]),
            AIMessage("", tool_calls=[call("get_users", "c6")]),
            AIMessage("The task is done."),
        ]
    )
    result = run_episodes(
        make_env("tau2:mock"), policy, cycling_slots("t", ["create_task_1"], 1), max_turns=10
    )
    [trajectory] = result.trajectories
    return trajectory
