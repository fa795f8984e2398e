"""tau2 in interactive mode: a user simulator on a real loopback OpenAI-compatible endpoint plays
the customer, tau2's prompt and stop signals drive it, and only the agent's calls are turns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatResult
from pydantic import Field

from hero_agents.adapters.envs import make_env
from hero_agents.adapters.envs.tau2_interactive import (
    GREETING,
    STOP_SIGNALS,
    Tau2InteractiveEnvironment,
    user_simulator_prompt,
)
from hero_agents.adapters.envs.user_sim import (
    USER_SIM_SPEC_FORMS,
    UserSimModel,
    load_user_sim,
    parse_user_sim_spec,
)
from hero_agents.adapters.policy.testing import ScriptedChatModel
from hero_agents.adapters.reflectors.local_endpoint import LocalChatEndpoint
from hero_agents.environment import InteractiveEpisode
from hero_agents.errors import ConfigError
from hero_agents.phases.rollout import cycling_slots, run_episodes


class ScriptedUser(ScriptedChatModel):
    """A scripted customer that keeps every context the endpoint passed it."""

    seen: list[list[BaseMessage]] = Field(default_factory=list)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.seen.append(list(messages))
        return super()._generate(messages, stop, run_manager, **kwargs)


def gold_policy(env: Tau2InteractiveEnvironment, task_id: str) -> ScriptedChatModel:
    criteria = env.task(task_id).evaluation_criteria
    calls = [
        AIMessage("", tool_calls=[{"name": a.name, "args": a.arguments, "id": f"g{i}"}])
        for i, a in enumerate(criteria.actions or [])
    ]
    answer = AIMessage("All done. " + "; ".join(criteria.communicate_info or []))
    return ScriptedChatModel(responses=[*calls, answer])


def interactive(name: str, user: ScriptedUser) -> tuple[Any, LocalChatEndpoint, UserSimModel]:
    endpoint = LocalChatEndpoint(user, model_name="scripted-customer").start()
    simulator = load_user_sim(f"openai-compatible:{endpoint.url}#scripted-customer")
    return make_env(name, user_sim=simulator), endpoint, simulator


@pytest.mark.parametrize("name", ["tau2:retail", "tau2:airline"])
def test_interactive_episode_end_to_end_with_a_loopback_user_simulator(name: str) -> None:
    user = ScriptedUser(
        responses=[
            AIMessage("Hello, I need help with my booking. Here are my details."),
            AIMessage("That is everything, thank you. ###STOP###"),
        ]
    )
    env, endpoint, simulator = interactive(name, user)
    with endpoint, simulator:
        assert isinstance(env, Tau2InteractiveEnvironment)
        task_id = env.task_ids("test")[1]
        episode = env.new_episode(task_id)
        assert isinstance(episode, InteractiveEpisode)
        assert episode.user_simulator.stop_signals == STOP_SIGNALS
        result = run_episodes(
            env, gold_policy(env, task_id), cycling_slots("t", [task_id], 1), max_turns=30
        )

    assert not result.failures, result.failures
    (trajectory,) = result.trajectories
    assert trajectory.reward == 1.0, trajectory.reward_info
    assert trajectory.termination == "user_stop"
    info = trajectory.reward_info
    assert info["mode"] == "interactive" and info["termination_reason"] == "user_stop"
    assert info["user_simulator"] == str(simulator.spec)
    # Only the agent's calls are turns; the customer's replies are what followed them.
    assert {turn.node for turn in trajectory.turns} == {"agent"}
    first = trajectory.turns[0].messages
    assert first[1] == {"role": "assistant", "content": GREETING}
    assert first[2]["role"] == "user" and first[2]["content"].startswith("Hello, I need help")
    assert trajectory.turns[-1].observation == [
        {"role": "user", "content": "That is everything, thank you. ###STOP###"}
    ]
    # The simulator was prompted with tau2's own user-simulator prompt for the task, over HTTP.
    prompt = user_simulator_prompt(env.task(task_id))
    assert all(seen[0].content == prompt for seen in user.seen) and len(user.seen) == 2
    assert "###STOP###" in prompt
    reason = env.task(task_id).user_scenario.instructions.reason_for_call
    assert reason.splitlines()[0] in prompt  # tau2 indents the scenario's lines
    assert user.seen[1][-1].content.startswith("All done.")  # the agent's answer, as user turn


def test_a_user_that_never_stops_runs_out_of_turns_and_scores_zero() -> None:
    user = ScriptedUser(responses=[AIMessage("I am not sure what I want.")])
    env, endpoint, simulator = interactive("tau2:retail", user)
    with endpoint, simulator:
        task_id = env.task_ids("test")[0]
        policy = ScriptedChatModel(responses=[AIMessage("Could you tell me more?")])
        result = run_episodes(env, policy, cycling_slots("t", [task_id], 1), max_turns=3)
    (trajectory,) = result.trajectories
    assert trajectory.termination == "max_turns" and len(trajectory.turns) == 3
    assert trajectory.reward == 0.0
    assert trajectory.reward_info["termination_reason"] == "max_steps"


def test_a_transfer_signal_ends_the_episode_as_a_user_stop() -> None:
    user = ScriptedUser(
        responses=[AIMessage("Please cancel my order."), AIMessage("###TRANSFER###")]
    )
    env, endpoint, simulator = interactive("tau2:airline", user)
    with endpoint, simulator:
        task_id = env.task_ids("test")[0]
        policy = ScriptedChatModel(responses=[AIMessage("I will transfer you to a human agent.")])
        (trajectory,) = run_episodes(
            env, policy, cycling_slots("t", [task_id], 1), max_turns=5
        ).trajectories
    assert trajectory.termination == "user_stop" and len(trajectory.turns) == 1


def test_local_user_simulator_serves_an_in_process_model_on_loopback(
    tiny_model_dir: Path,
) -> None:
    # The tiny random model's greedy reply is empty: sample (seeded) for some text.
    spec = str(tiny_model_dir)
    with load_user_sim(spec, temperature=1.0, max_tokens=24, seed=0) as simulator:
        assert simulator.spec.kind == "folder" and simulator.spec.in_process
        assert simulator.model.openai_api_base.startswith("http://127.0.0.1:")
        env = make_env("tau2:airline", user_sim=simulator)
        policy = ScriptedChatModel(responses=[AIMessage("How can I help?")])
        result = run_episodes(
            env, policy, cycling_slots("t", env.task_ids("test")[:1], 1), max_turns=2
        )
        url = simulator.model.openai_api_base
    assert not result.failures, result.failures
    (trajectory,) = result.trajectories
    assert len(trajectory.turns) == 2 and trajectory.termination == "max_turns"
    reply = trajectory.turns[0].observation
    assert len(reply) == 1 and reply[0]["role"] == "user" and reply[0]["content"].strip()
    with pytest.raises(httpx.TransportError):  # closing the simulator stopped its endpoint
        httpx.get(f"{url}/models", timeout=2)


# ------------------------------------------------------------------ specs


def test_user_sim_specs_parse_and_bad_ones_list_the_valid_forms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = parse_user_sim_spec("openai-compatible:http://127.0.0.1:8000/v1/#Qwen/Qwen3-8B")
    assert (spec.kind, spec.base_url, spec.name) == (
        "openai-compatible",
        "http://127.0.0.1:8000/v1",
        "Qwen/Qwen3-8B",
    )
    assert str(spec) == "openai-compatible:http://127.0.0.1:8000/v1#Qwen/Qwen3-8B"
    assert str(parse_user_sim_spec("default")) == "default"
    assert parse_user_sim_spec("openai:gpt-4.1").name == "gpt-4.1"
    bad_specs = ("gpt-4.1", "openai:", "openai-compatible:http://x/v1", "ftp:x", "self", "local:x")
    for bad in bad_specs:
        with pytest.raises(ConfigError) as raised:
            parse_user_sim_spec(bad)
        assert USER_SIM_SPEC_FORMS in str(raised.value)
    with pytest.raises(ConfigError, match="credentials"):
        parse_user_sim_spec("openai-compatible:http://user:pw@host/v1#m")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("HERO_USER_SIM_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="API key"):
        load_user_sim("openai:gpt-4.1")


def test_a_task_with_a_message_history_resumes_with_the_user() -> None:
    user = ScriptedUser(
        responses=[AIMessage("Now mark it as completed please."), AIMessage("###STOP###")]
    )
    env, endpoint, simulator = interactive("tau2:mock", user)
    with endpoint, simulator:
        task_id = "update_task_with_message_history"
        episode = env.new_episode(task_id)
        history = episode.initial_messages
        assert GREETING not in [m.text for m in history]  # tau2 adds no greeting to a history
        assert isinstance(history[-1], AIMessage) and not history[-1].tool_calls
        (trajectory,) = run_episodes(
            env, gold_policy(env, task_id), cycling_slots("t", [task_id], 1)
        ).trajectories
    assert trajectory.reward == 1.0 and trajectory.termination == "user_stop"
    # the user saw the earlier exchange with roles flipped: its own request as an assistant turn,
    # the agent's tool traffic left out
    seen = user.seen[0]
    assert [type(m).__name__ for m in seen] == ["SystemMessage", "AIMessage", "HumanMessage"]
    assert seen[1].content == history[0].text
