"""webshop-lite: WebShop's pages, actions and reward over the generated catalog, run for real."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, ToolMessage

from hero_agents.adapters.envs import ENV_NAMES, make_env
from hero_agents.adapters.envs.user_sim import load_user_sim
from hero_agents.adapters.envs.webshop_actions import SEP
from hero_agents.adapters.envs.webshop_catalog import generate_catalog
from hero_agents.adapters.envs.webshop_lite import (
    PAGE_SIZE,
    WebShopLiteEnvironment,
    WebShopLiteEpisode,
)
from hero_agents.adapters.policy.testing import ScriptedChatModel
from hero_agents.environment import Environment, Episode
from hero_agents.errors import ConfigError
from hero_agents.graphs import build_tool_agent, termination_reason
from hero_agents.phases.rollout import cycling_slots, run_episodes


@pytest.fixture(scope="module")
def env() -> WebShopLiteEnvironment:
    return make_env("webshop-lite")  # type: ignore[return-value]


def click(button: str, call_id: str = "c") -> AIMessage:
    return AIMessage("", tool_calls=[{"name": "click", "args": {"button": button}, "id": call_id}])


def search(query: str) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": "search", "args": {"query": query}, "id": "s"}])


def play(episode: WebShopLiteEpisode, script: list[AIMessage]) -> dict[str, Any]:
    graph = build_tool_agent(
        ScriptedChatModel(responses=script),
        episode.tools,
        system_prompt=episode.system_prompt,
        max_turns=len(script),
    )
    return graph.invoke({"messages": list(episode.initial_messages)})


def tool_results(state: dict[str, Any]) -> list[ToolMessage]:
    return [m for m in state["messages"] if isinstance(m, ToolMessage)]


# ------------------------------------------------------------------ names, splits, protocol


def test_registered_name_protocols_and_splits(env: WebShopLiteEnvironment) -> None:
    assert "webshop-lite" in ENV_NAMES and env.name == "webshop-lite"
    assert isinstance(env, Environment)
    assert isinstance(env.new_episode(env.task_ids()[0]), Episode)
    train, test, every = (env.task_ids(s) for s in ("train", "test", "all"))
    assert (len(train), len(test), len(every)) == (120, 60, 180)
    assert not set(train) & set(test) and sorted(train + test) == sorted(every)
    again = generate_catalog.__wrapped__()  # a fresh generation: identical
    assert again.goals == env.catalog.goals and dict(again.products) == dict(env.catalog.products)
    with pytest.raises(ConfigError, match="valid"):
        env.task_ids("dev")
    with pytest.raises(ConfigError, match="unknown task"):
        env.new_episode("nope")
    with load_user_sim("openai-compatible:http://127.0.0.1:9/v1#m") as simulator:
        with pytest.raises(ConfigError, match="no simulated user"):
            make_env("webshop-lite", user_sim=simulator)


def test_first_observation_is_webshops_search_page(env: WebShopLiteEnvironment) -> None:
    task_id = env.task_ids("test")[0]
    episode = env.new_episode(task_id)
    instruction = env.goal(task_id).instruction
    assert episode.initial_messages[0].content == SEP.join(
        ["WebShop", "Instruction:", instruction, "Search"]
    )
    assert "price lower than" in instruction
    assert {t.name for t in episode.tools} == {"search", "click"}
    assert "click" in episode.system_prompt and "[SEP]" in episode.system_prompt


# ------------------------------------------------------------------ reward through the graph


def test_gold_actions_earn_the_full_reward(env: WebShopLiteEnvironment) -> None:
    for task_id in env.task_ids():  # every goal can be fully met (checked on the session)
        assert env.gold_actions(task_id)[-1]["args"] == {"button": "Buy Now"}
    for task_id in env.task_ids()[::9]:  # and through the agent graph and its tools
        episode = env.new_episode(task_id)
        state = play(episode, env.gold_messages(task_id))
        score = episode.score(state["messages"], termination=termination_reason(state))
        assert score.reward == 1.0, (task_id, score.info)
        assert not any(m.status == "error" for m in tool_results(state))
    assert score.info["purchased"]["asin"] == env.goal(task_id).asin
    assert score.info["r_type"] == 1.0 and score.info["r_price"] is True


def test_no_purchase_scores_zero_and_a_near_miss_scores_part(env: WebShopLiteEnvironment) -> None:
    task_id = next(t for t in env.task_ids("test") if env.goal(t).options)
    goal = env.goal(task_id)
    episode = env.new_episode(task_id)
    assert episode.score([], termination="stop").reward == 0.0
    assert episode.score([], termination="stop").info["purchased"] is None
    # the right product bought without choosing its options
    gold = env.gold_actions(task_id)
    state = play(
        episode,
        [search(gold[0]["args"]["query"]), click(goal.asin), click("Buy Now"), AIMessage("ok")],
    )
    score = episode.score(state["messages"], termination="stop")
    wanted = len(goal.attributes) + len(goal.options) + 1
    assert score.reward == pytest.approx((len(goal.attributes) + 1) / wanted)
    assert score.info["r_option"] == 0.0 and score.info["purchased"]["options"] == {}


def test_rollout_records_a_scored_webshop_lite_trajectory(env: WebShopLiteEnvironment) -> None:
    task_id = env.task_ids("train")[0]
    result = run_episodes(
        env,
        ScriptedChatModel(responses=env.gold_messages(task_id)),
        cycling_slots("t", [task_id], 1),
        max_turns=10,
    )
    (trajectory,) = result.trajectories
    assert trajectory.env == "webshop-lite" and trajectory.reward == 1.0
    assert trajectory.termination == "stop"
    assert trajectory.turns[0].observation[0]["content"].startswith("Instruction:")
    assert "Thank you for shopping with us!" in trajectory.turns[-2].observation[0]["content"]


# ------------------------------------------------------------------ pages and actions


def test_pages_follow_webshops_navigation(env: WebShopLiteEnvironment) -> None:
    task_id = next(t for t in env.task_ids() if len(env.goal(t).options) == 2)
    goal = env.goal(task_id)
    product = env.catalog.products[goal.asin]
    episode = env.new_episode(task_id)
    color, size = goal.options.values()
    state = play(
        episode,
        [
            search(goal.query),
            click(goal.asin.lower()),  # clicks are case-insensitive, as on WebShop
            click("Features"),
            click("< Prev"),
            AIMessage(
                "",
                tool_calls=[  # two calls in one message run in order
                    {"name": "click", "args": {"button": color}, "id": "o1"},
                    {"name": "click", "args": {"button": size}, "id": "o2"},
                ],
            ),
            click("Back to Search"),
            AIMessage("I stop here."),
        ],
    )
    pages = [m.text for m in tool_results(state)]
    results, item, features, back, _, _, home = pages
    assert "Page 1 (Total results: " in results and f"{goal.asin} [SEP] {product.title}" in results
    assert item.split(SEP)[:4] == ["Instruction:", goal.instruction, "Back to Search", "< Prev"]
    assert f"Price: ${product.price:.2f}" in item and item.endswith(
        "Description [SEP] Features [SEP] Buy Now"
    )
    assert all(bullet in features for bullet in product.bullet_points)
    assert back == item
    assert home == episode.initial_messages[0].content
    assert episode.session.purchase is None


def test_results_page_through_ten_at_a_time(env: WebShopLiteEnvironment) -> None:
    episode = env.new_episode(env.task_ids()[0])
    session = episode.session
    first = session.act("search", "for")  # every title says "for ..."
    assert len(session.results) > PAGE_SIZE and "Next >" in first and "< Prev" not in first
    second = session.act("click", "Next >")
    assert "Page 2 " in second and "< Prev [SEP] Next >" in second
    shown = [p.asin for p in session.results[PAGE_SIZE : 2 * PAGE_SIZE]]
    assert [c for c in session.clickables() if c.startswith("B0")] == shown
    assert session.act("click", "< Prev") == first


def test_invalid_actions_are_tool_errors_that_say_what_the_page_offers(
    env: WebShopLiteEnvironment,
) -> None:
    task_id = env.task_ids()[0]
    goal = env.goal(task_id)
    episode = env.new_episode(task_id)
    state = play(
        episode,
        [
            click("Buy Now"),  # nothing to click on the search page
            search(goal.query),
            search("again"),  # search only on the search page
            click("B0NOTTHERE"),
            click(goal.asin),
            click("Buy Now"),
            click("Back to Search"),  # the episode is over
            AIMessage("Done."),
        ],
    )
    errors = [m.text for m in tool_results(state) if m.status == "error"]
    assert len(errors) == 4
    assert "not on this page; it offers: nothing" in errors[0]
    assert "only available on the search page" in errors[1]
    assert "'Back to Search'" in errors[2] and goal.asin in errors[2]
    assert "episode is over" in errors[3]
    assert episode.score(state["messages"], termination="stop").info["purchased"]


def test_train_tasks_have_full_reward_demonstrations_of_the_shortest_length() -> None:
    from hero_agents.adapters.envs import make_env
    from hero_agents.environment import DemonstrationSource, SolutionLengths

    env = make_env("webshop-lite")
    assert isinstance(env, DemonstrationSource) and isinstance(env, SolutionLengths)
    tasks = env.task_ids("train")[:5]
    demos = env.demonstrations(tasks)
    assert demos.left_out == {}
    assert [t.task_id for t in demos.trajectories] == tasks
    for demo in demos.trajectories:
        assert demo.reward == 1.0 and len(demo.turns) == env.solution_turns(demo.task_id)
        assert demo.turns[0].action["tool_calls"][0]["function"]["name"] == "search"
