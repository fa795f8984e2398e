"""The reference reflector: scripted episodes played through the real agent graph on tau2:mock
and webshop-lite, each turn judged against the environment's own reference solution."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.messages import AIMessage

from hero_agents.adapters.envs import make_env
from hero_agents.adapters.envs.tau2_demos import TRANSFER_MESSAGE, gold_replies
from hero_agents.adapters.envs.tau2_interactive import Tau2InteractiveEnvironment
from hero_agents.adapters.reflectors import load_reflector
from hero_agents.demonstrations import ScriptedReplies
from hero_agents.distill.examples import check_trajectory
from hero_agents.environment import Environment, ReferenceSolutions
from hero_agents.errors import ConfigError
from hero_agents.reflection import (
    ReferenceReflector,
    parse_reflector_spec,
    reference_demo_reflector,
    reflector_label,
)
from hero_agents.reflection.reference import align_with_reference, same_value
from hero_agents.rollout import arun_episode
from hero_agents.trajectory import Diagnosis, Trajectory

_ids = itertools.count()

TAU2_TASK = "create_task_1__v0"


def as_call(name: str, **arguments: Any) -> str:
    """A call as the reference's hints name it: the JSON object the policy writes."""
    return json.dumps({"name": name, "arguments": arguments})


GOLD_CREATE = as_call("create_task", user_id="user_2", title="Training Session")
SHOP_TASK = "ws0003"
SHOP_PRODUCT = "B01H8GVKWK"


def call(name: str, **args: Any) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": f"call_{next(_ids)}"}])


def click(button: Any) -> AIMessage:
    return call("click", button=button)


def play(env: Environment, task_id: str, replies: Sequence[AIMessage]) -> Trajectory:
    policy = ScriptedReplies(replies=list(replies))
    return asyncio.run(arun_episode(env, policy, task_id, max_turns=len(replies)))


def reflect(env: Environment, trajectory: Trajectory) -> list[Diagnosis]:
    [result] = ReferenceReflector(env).reflect([trajectory])
    assert result.ok, result.error
    assert {d.reflector for d in result.diagnoses} == {"reference"}
    return result.diagnoses


def labels(diagnoses: Sequence[Diagnosis]) -> list[tuple[str, str]]:
    return [(d.necessity, d.validity) for d in diagnoses]


CORRECT = ("necessary", "valid")
WRONG = ("necessary", "invalid")
EXTRA = ("unnecessary", "valid")


@pytest.fixture(scope="module")
def tau2() -> Environment:
    return make_env("tau2:mock")


@pytest.fixture(scope="module")
def shop() -> Environment:
    return make_env("webshop-lite")


# --------------------------------------------------------------------------- tau2


def test_a_gold_tau2_episode_is_correct_at_every_turn_with_no_hint(tau2: Environment) -> None:
    trajectory = play(tau2, TAU2_TASK, gold_replies(tau2.task(TAU2_TASK)))
    assert trajectory.reward == 1.0
    diagnoses = reflect(tau2, trajectory)
    assert labels(diagnoses) == [CORRECT, CORRECT]
    assert [(d.hint, d.cause) for d in diagnoses] == [("", None), ("", None)]

    assert isinstance(tau2, ReferenceSolutions)
    solution = tau2.reference_solution(TAU2_TASK)
    aligned = align_with_reference(trajectory, solution)
    assert all(a.on_reference for a in aligned)
    assert [a.reference_action for a in aligned] == list(solution.actions)


def test_arguments_match_regardless_of_key_order_and_spacing(tau2: Environment) -> None:
    trajectory = play(tau2, TAU2_TASK, gold_replies(tau2.task(TAU2_TASK)))
    function = trajectory.turns[0].action["tool_calls"][0]["function"]
    reordered = dict(reversed(json.loads(function["arguments"]).items()))
    function["arguments"] = json.dumps(reordered, indent=2)
    assert labels(reflect(tau2, trajectory)) == [CORRECT, CORRECT]


def test_values_match_only_within_their_type() -> None:
    assert same_value({"a": 1, "b": [1.0, "x"]}, {"b": [1, "x"], "a": 1.0})
    assert not same_value("3", 3)
    assert not same_value(True, 1)
    assert not same_value("Buy milk ", "Buy milk")


def test_a_free_text_argument_tau2_does_not_compare_matches_any_text(tau2: Environment) -> None:
    summary = "The user wants a task deleted; no tool can do it."
    replies = [call("transfer_to_human_agents", summary=summary), AIMessage(TRANSFER_MESSAGE)]
    trajectory = play(tau2, "impossible_task_1__v0", replies)
    assert trajectory.reward == 1.0
    assert labels(reflect(tau2, trajectory)) == [CORRECT, CORRECT]


def test_a_wrong_argument_names_the_exact_call(tau2: Environment) -> None:
    replies = [call("create_task", user_id="user_2", title="Training session"), AIMessage("Done.")]
    trajectory = play(tau2, TAU2_TASK, replies)
    assert trajectory.reward == 0.0
    wrong, reply = reflect(tau2, trajectory)

    assert labels([wrong, reply]) == [WRONG, WRONG]
    assert (
        wrong.cause == 'wrong arguments: title="Training session" (reference: "Training Session")'
    )
    assert wrong.hint == f"The correct next call is {GOLD_CREATE}"
    # the episode left the reference at turn 0: the reply's hint is what is still missing
    assert reply.cause == "replied with 1 reference call(s) missing"
    assert reply.hint == f"Still missing: {GOLD_CREATE}"


def test_a_diverged_tau2_episode(tau2: Environment) -> None:
    gold_call, gold_reply = gold_replies(tau2.task(TAU2_TASK))
    replies = [
        call("create_task", user_id="user_9", title="Training Session"),  # unknown user: error
        call("get_users"),  # a lookup the reference does not need
        gold_call,
        call("create_task", user_id="user_2", title="Training Session"),  # the same call again
        gold_reply,
    ]
    trajectory = play(tau2, TAU2_TASK, replies)
    assert trajectory.reward == 0.0  # two tasks created
    failed, lookup, right, repeat, reply = reflect(tau2, trajectory)

    assert labels([failed, lookup, right, repeat, reply]) == [
        WRONG,
        EXTRA,
        CORRECT,
        EXTRA,
        CORRECT,
    ]
    assert failed.cause == (
        'wrong arguments: user_id="user_9" (reference: "user_2"); '
        "the tool said: Error: User user_9 not found"
    )
    assert failed.hint == f"The correct next call is {GOLD_CREATE}"
    assert (lookup.cause, lookup.hint) == ("not in the reference", f"Still missing: {GOLD_CREATE}")
    assert (right.hint, reply.hint) == ("", "")
    assert repeat.cause == "repeats the call made at turn 2"
    assert repeat.hint == (
        "Every reference call is made; what is left is "
        'a reply without a tool call: "Your request is done."'
    )


def test_a_tau2_episode_that_stops_early(tau2: Environment) -> None:
    trajectory = play(tau2, TAU2_TASK, [AIMessage("I have created the task.")])
    [reply] = reflect(tau2, trajectory)
    assert labels([reply]) == [WRONG]
    assert reply.cause == "replied with 1 reference call(s) missing"
    assert reply.hint == f"The correct next call is {GOLD_CREATE}"


def test_a_cut_off_reply_in_the_closing_replys_place_is_invalid(tau2: Environment) -> None:
    create, _ = gold_replies(tau2.task(TAU2_TASK))
    cut_off = AIMessage('Done.\n<tool_call>\n{"name": "get_users", "arguments": {')
    trajectory = play(tau2, TAU2_TASK, [create, cut_off])
    first, reply = reflect(tau2, trajectory)
    assert labels([first]) == [CORRECT]
    assert labels([reply]) == [WRONG]  # what the trace proves beats "a reply, when none is due"
    assert "cut off" in (reply.cause or "")
    assert reply.hint.startswith("The correct next step is a reply without a tool call")


# --------------------------------------------------------------------------- webshop-lite


def shop_gold() -> list[AIMessage]:
    return [
        call("search", query="usb c phone charger"),
        click(SHOP_PRODUCT),
        click("white"),
        click("20w"),
        click("Buy Now"),
        AIMessage("I bought the product."),
    ]


def test_the_webshop_reference_is_its_gold_path(shop: Environment) -> None:
    assert isinstance(shop, ReferenceSolutions)
    solution = shop.reference_solution(SHOP_TASK)
    expected = [m.tool_calls[0]["args"] if m.tool_calls else m.content for m in shop_gold()]
    assert [
        json.loads(a["tool_calls"][0]["function"]["arguments"])
        if "tool_calls" in a
        else a["content"]
        for a in solution.actions
    ] == expected
    assert solution.any_order == (frozenset({2, 3}),)  # the two options


def test_a_gold_webshop_episode_is_correct_at_every_turn(shop: Environment) -> None:
    trajectory = play(shop, SHOP_TASK, shop_gold())
    assert trajectory.reward == 1.0
    diagnoses = reflect(shop, trajectory)
    assert labels(diagnoses) == [CORRECT] * 6
    assert {d.hint for d in diagnoses} == {""}


def test_options_may_be_chosen_in_any_order(shop: Environment) -> None:
    replies = shop_gold()
    replies[2], replies[3] = replies[3], replies[2]
    trajectory = play(shop, SHOP_TASK, replies)
    assert trajectory.reward == 1.0
    assert labels(reflect(shop, trajectory)) == [CORRECT] * 6


def test_a_wrong_option_names_the_right_one(shop: Environment) -> None:
    replies = shop_gold()
    replies.insert(2, click("black"))
    trajectory = play(shop, SHOP_TASK, replies)
    diagnoses = reflect(shop, trajectory)

    assert labels(diagnoses) == [CORRECT, CORRECT, WRONG, *[CORRECT] * 4]
    assert diagnoses[2].cause == 'wrong arguments: button="black" (reference: "white")'
    assert diagnoses[2].hint == f"The correct next call is {as_call('click', button='white')}"
    assert [d.hint for d in diagnoses[3:]] == [""] * 4


def test_a_number_for_a_text_argument_is_a_different_call(shop: Environment) -> None:
    # ws0004 wants size "10": the number 10 is refused by the tool and never matches
    replies = [call("search", query="lightweight running shoes"), click("B0L5GUI82Q")]
    replies += [click("grey"), click(10), click("Buy Now")]
    trajectory = play(shop, "ws0004", replies)
    assert trajectory.turns[3].tool_errors == 1
    number = reflect(shop, trajectory)[3]
    assert labels([number]) == [WRONG]
    assert number.cause.startswith('wrong arguments: button=10 (reference: "10"); the tool said:')
    assert number.hint == f"The correct next call is {as_call('click', button='10')}"


def test_a_diverged_webshop_episode(shop: Environment) -> None:
    gold = shop_gold()
    replies = [click("Buy Now"), *gold[:2], click("Description"), click("< Prev"), *gold[2:]]
    trajectory = play(shop, SHOP_TASK, replies)
    assert trajectory.reward == 1.0
    diagnoses = reflect(shop, trajectory)

    assert labels(diagnoses) == [WRONG, CORRECT, CORRECT, WRONG, WRONG, *[CORRECT] * 4]
    early = diagnoses[0]
    assert early.cause.startswith(
        'too early: search(query="usb c phone charger") comes first; the tool said: '
        "click[Buy Now] is not on this page"
    )
    search = as_call("search", query="usb c phone charger")
    assert early.hint == f"The correct next call is {search}"
    white, size, buy_now = (as_call("click", button=b) for b in ("white", "20w", "Buy Now"))
    missing = f"Still missing: {white}; {size}; {buy_now}"
    assert [d.hint for d in diagnoses[3:5]] == [missing, missing]
    assert diagnoses[3].cause == 'wrong arguments: button="Description" (reference: "white")'
    assert {d.hint for d in diagnoses[5:]} == {""}


def test_buying_before_the_options_is_too_early(shop: Environment) -> None:
    gold = shop_gold()
    trajectory = play(shop, SHOP_TASK, [*gold[:2], gold[4], gold[5]])
    assert trajectory.reward < 1.0
    *_, buy, reply = reflect(shop, trajectory)

    assert labels([buy, reply]) == [WRONG, WRONG]
    assert buy.cause == 'too early: click(button="white") comes first'
    assert buy.hint == f"The correct next call is {as_call('click', button='white')}"
    assert reply.cause == "replied with 2 reference call(s) missing"
    white, size = as_call("click", button="white"), as_call("click", button="20w")
    assert reply.hint == f"Still missing: {white}; {size}"


def test_a_webshop_episode_that_stops_early(shop: Environment) -> None:
    trajectory = play(shop, SHOP_TASK, [shop_gold()[0], AIMessage("I could not find it.")])
    search, reply = reflect(shop, trajectory)
    assert labels([search, reply]) == [CORRECT, WRONG]
    assert reply.hint == f"The correct next call is {as_call('click', button=SHOP_PRODUCT)}"


# --------------------------------------------------------------------------- no reference


def test_trajectories_without_a_reference_fail_naming_why(
    tau2: Environment, shop: Environment
) -> None:
    no_gold = "update_task_with_history_and_env_assertions__v0"
    unscripted = play(tau2, no_gold, [AIMessage("Done.")])
    production = play(tau2, TAU2_TASK, [AIMessage("Done.")]).model_copy(
        update={"source": "production", "env": None}
    )
    other_env = play(shop, SHOP_TASK, [AIMessage("Done.")])

    results = ReferenceReflector(tau2).reflect([unscripted, production, other_env])
    assert [r.error for r in results] == [
        f"task {no_gold!r} of tau2:mock has no reference solution",
        "a production trace has no reference solution (only benchmark episodes do)",
        "the trajectory is from webshop-lite, not tau2:mock",
    ]
    assert all(r.trajectory.diagnoses is None for r in results)


def test_an_environment_without_references_is_a_config_error(tau2: Environment) -> None:
    site = make_env("webshop:http://127.0.0.1:9")
    with pytest.raises(ConfigError, match=r"webshop:http://127\.0\.0\.1:9 .* has none"):
        ReferenceReflector(site)
    interactive = Tau2InteractiveEnvironment(tau2, ScriptedReplies(replies=[]), user_sim_name="u")
    with pytest.raises(ConfigError, match="Tau2InteractiveEnvironment"):
        ReferenceReflector(interactive)
    with pytest.raises(ConfigError, match="needs the benchmark environment"):
        load_reflector("reference")


def test_the_spec_loads_with_its_environment(tau2: Environment) -> None:
    assert str(parse_reflector_spec("reference")) == "reference"
    with pytest.raises(ConfigError, match="'reference' takes no argument"):
        parse_reflector_spec("reference:gold")
    reflector = load_reflector("reference", env=tau2)
    assert isinstance(reflector, ReferenceReflector) and reflector.env is tau2


def test_privileged_reflectors_say_so() -> None:
    assert reflector_label("reference") == "reference (privileged)"
    assert reflector_label("demo:reference") == "demo:reference (privileged)"
    assert reflector_label("demo") == "demo"
    assert reflector_label("self:default") == "self:default"


# --------------------------------------------------------------------------- demo baseline


def test_the_demo_baseline_with_reference_demonstrations(tau2: Environment) -> None:
    reflector = reference_demo_reflector(tau2, [TAU2_TASK])
    wrong = play(tau2, TAU2_TASK, [AIMessage("Done.")])
    [result] = reflector.reflect([wrong])

    assert result.ok
    [diagnosis] = result.diagnoses
    assert diagnosis.reflector == "demo:reference"
    assert reflector_label(diagnosis.reflector) == "demo:reference (privileged)"
    assert 'called create_task({"user_id": "user_2", "title": "Training Session"})' in (
        diagnosis.hint
    )
    check_trajectory(result.trajectory, "demo")  # the demo mode trains on it

    with pytest.raises(ConfigError, match="needs an environment that has them"):
        reference_demo_reflector(make_env("webshop:http://127.0.0.1:9"), ["fixed_0"])
