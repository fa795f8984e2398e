"""The loopback OpenAI-compatible endpoint over an in-process chat model, and `self` reflection."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from langchain_core.messages import AIMessage
from reflection_server import make_trajectory

from hero_agents.adapters.policy.testing import ScriptedChatModel
from hero_agents.adapters.policy.transformers_chat import TransformersChatModel
from hero_agents.adapters.reflectors import LocalChatEndpoint, load_reflector
from hero_agents.reflection.parsing import parse_diagnoses
from hero_agents.reflection.prompt import diagnoses_schema

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


def test_a_json_schema_is_enforced_even_on_a_random_model(
    tiny_policy: TransformersChatModel,
) -> None:
    targets = [0, 2]
    schema = diagnoses_schema(targets, max_hint_chars=30)
    with LocalChatEndpoint(tiny_policy) as endpoint:
        client = openai.OpenAI(base_url=endpoint.url, api_key="unused", max_retries=0)
        response = client.chat.completions.create(
            model="local",
            messages=[{"role": "user", "content": "Diagnose turns 0 and 2."}],
            max_completion_tokens=200,
            temperature=1.0,
            response_format={"type": "json_schema", "json_schema": {"schema": schema}},
        )
    reply = response.choices[0].message.content
    parsed = parse_diagnoses(reply, targets, reflector="self", max_hint_words=40)
    assert [d.turn_index for d in parsed.diagnoses] == targets
    assert all(len(d.hint) <= 30 for d in parsed.diagnoses)
    assert response.choices[0].finish_reason == "stop"


def test_refuses_what_it_cannot_honour(tiny_policy: TransformersChatModel) -> None:
    unconstrained = ScriptedChatModel(responses=[AIMessage("hello")])
    messages = [{"role": "user", "content": "Hi"}]
    with LocalChatEndpoint(unconstrained) as endpoint:
        client = openai.OpenAI(base_url=endpoint.url, api_key="unused", max_retries=0)
        with pytest.raises(openai.BadRequestError, match="response_format"):
            client.chat.completions.create(
                model="local", messages=messages, response_format={"type": "json_object"}
            )
    with LocalChatEndpoint(tiny_policy) as endpoint:
        client = openai.OpenAI(base_url=endpoint.url, api_key="unused", max_retries=0)
        with pytest.raises(openai.BadRequestError, match="stream"):
            client.chat.completions.create(model="local", messages=messages, stream=True)
        with pytest.raises(openai.NotFoundError):
            client.embeddings.create(model="local", input="x")
    with pytest.raises(openai.APIConnectionError):  # stopped: the port is released
        client.chat.completions.create(model="local", messages=messages)


def check_self_results(results, trajectories) -> None:
    assert [r.trajectory.id for r in results] == [t.id for t in trajectories]
    for result, trajectory in zip(results, trajectories, strict=True):
        # constrained to the diagnoses' schema, every trajectory is fully diagnosed
        assert result.ok, result.error
        assert [d.turn_index for d in result.diagnoses] == list(range(len(trajectory.turns)))
        assert result.usage.calls >= 1 and result.usage.completion_tokens > 0
        assert result.usage.format_retries == 0


def test_self_reflection_of_even_a_random_model_is_in_the_schema(tiny_model_dir: Path) -> None:
    trajectories = [make_trajectory("a", turns=2), make_trajectory("b", turns=2)]
    with load_reflector(str(tiny_model_dir), format_retries=0) as reflector:
        assert reflector.name == str(tiny_model_dir)
        assert reflector.config.exact_schema
        results = reflector.reflect(trajectories)
        url = reflector.config.base_url

    check_self_results(results, trajectories)  # garbage words, but in the schema
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
    with pytest.raises(openai.APIConnectionError):  # closing the reflector stopped the endpoint
        client.models.list()


@pytest.mark.slow
def test_self_reflection_with_the_default_policy() -> None:
    trajectories = [make_trajectory("a", turns=3, error_turns=[1])]
    with load_reflector("self", tokens_per_diagnosis=60, format_retries=1) as reflector:
        results = reflector.reflect(trajectories)
    check_self_results(results, trajectories)
