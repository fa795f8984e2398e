"""The loopback OpenAI-compatible endpoint over an in-process chat model, and `self` reflection."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from reflection_server import make_trajectory

from hero_agents.adapters.policy.transformers_chat import TransformersChatModel
from hero_agents.adapters.reflectors import LocalChatEndpoint, load_reflector

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture
def tiny_policy(tiny_model_dir: Path) -> TransformersChatModel:
    return TransformersChatModel.from_pretrained(tiny_model_dir, max_new_tokens=64, seed=0)


def test_serves_the_model_through_the_openai_client(tiny_policy: TransformersChatModel) -> None:
    with LocalChatEndpoint(tiny_policy, model_name="tiny") as endpoint:
        client = openai.OpenAI(base_url=endpoint.url, api_key="unused", max_retries=0)
        assert [m.id for m in client.models.list()] == ["tiny"]
        response = client.chat.completions.create(
            model="tiny",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
            ],
            max_completion_tokens=5,
            temperature=0.0,
        )
        again = client.chat.completions.create(
            model="tiny",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
            ],
            max_completion_tokens=5,
            temperature=0.0,
        )
    assert response.choices[0].message.role == "assistant"
    assert isinstance(response.choices[0].message.content, str)
    assert 1 <= response.usage.completion_tokens <= 5  # the request's limit was applied
    assert response.usage.prompt_tokens > 5
    assert response.choices[0].finish_reason in ("stop", "length")
    assert again.choices[0].message.content == response.choices[0].message.content  # greedy
    assert tiny_policy.max_new_tokens == 64  # the served model itself is left unchanged


def test_refuses_what_it_cannot_honour(tiny_policy: TransformersChatModel) -> None:
    with LocalChatEndpoint(tiny_policy) as endpoint:
        client = openai.OpenAI(base_url=endpoint.url, api_key="unused", max_retries=0)
        messages = [{"role": "user", "content": "Hi"}]
        with pytest.raises(openai.BadRequestError, match="response_format"):
            client.chat.completions.create(
                model="local", messages=messages, response_format={"type": "json_object"}
            )
        with pytest.raises(openai.BadRequestError, match="stream"):
            client.chat.completions.create(model="local", messages=messages, stream=True)
        with pytest.raises(openai.NotFoundError):
            client.embeddings.create(model="local", input="x")
    with pytest.raises(openai.APIConnectionError):  # stopped: the port is released
        client.chat.completions.create(model="local", messages=messages)


def check_self_results(results, trajectories) -> None:
    assert [r.trajectory.id for r in results] == [t.id for t in trajectories]
    for result, trajectory in zip(results, trajectories, strict=True):
        # each trajectory is fully diagnosed, or failed with the turns and the reason named
        if result.ok:
            turns = list(range(len(trajectory.turns)))
            assert [d.turn_index for d in result.diagnoses] == turns
        else:
            assert result.error.startswith("turns [") and result.trajectory.diagnoses is None
        assert result.usage.calls >= 1 and result.usage.completion_tokens > 0


def test_self_reflection_diagnoses_or_names_the_failure(tiny_model_dir: Path) -> None:
    trajectories = [make_trajectory("a", turns=2), make_trajectory("b", turns=2)]
    with load_reflector(
        f"self:{tiny_model_dir}", format_retries=0, tokens_per_diagnosis=12
    ) as reflector:
        assert reflector.name == f"self:{tiny_model_dir}"
        results = reflector.reflect(trajectories)
        url = reflector.config.base_url

    check_self_results(results, trajectories)  # a random model writes garbage: failures
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
    with pytest.raises(openai.APIConnectionError):  # closing the reflector stopped the endpoint
        client.models.list()


@pytest.mark.slow
def test_self_reflection_with_the_default_policy() -> None:
    trajectories = [make_trajectory("a", turns=3, error_turns=[1])]
    with load_reflector("self", tokens_per_diagnosis=60, format_retries=1) as reflector:
        results = reflector.reflect(trajectories)
    check_self_results(results, trajectories)
