"""Outcome labels: finding a field (dotted attribute names too) and turning it into a reward."""

from __future__ import annotations

import pytest

from hero_agents.adapters.importers.outcome import MISSING, OutcomeLabels, find_first, lookup
from hero_agents.errors import ConfigError


def test_lookup_follows_paths_and_matches_dotted_keys_whole() -> None:
    run = {"feedback_stats": {"user_score": {"avg": 0.5}}, "extra": {"metadata": {"ok": True}}}
    assert lookup(run, "feedback_stats.user_score.avg") == 0.5
    assert lookup(run, "extra.metadata.ok") is True
    attributes = {"gen_ai.evaluation.score.value": 0.9, "app": {"resolved": False}}
    assert lookup(attributes, "gen_ai.evaluation.score.value") == 0.9
    assert lookup(attributes, "app.resolved") is False
    assert lookup(run, "feedback_stats.missing") is MISSING
    assert lookup("not a mapping", "x") is MISSING
    assert find_first([{"a": None}, {"a": 2}, {"b": 1}], ["b", "a"]) == 1


@pytest.mark.parametrize(
    ("value", "reward"),
    [(True, 1.0), (False, 0.0), (3, 3.0), (0.25, 0.25), ("0.5", 0.5), ("TRUE", 1.0), ("good", 1.0)],
)
def test_values_become_rewards(value: object, reward: float) -> None:
    labels = OutcomeLabels.parse(["score"], ["good=1", "bad=-1"])
    assert labels.reward("score", value) == reward


@pytest.mark.parametrize(
    ("value", "why"),
    [("meh", "--reward-label meh=NUMBER"), ({"avg": 1}, "a dict"), (float("nan"), "finite")],
)
def test_values_that_are_no_reward_say_what_to_do(value: object, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        OutcomeLabels(fields=("score",)).reward("score", value)


def test_label_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="LABEL=NUMBER"):
        OutcomeLabels.parse(["score"], ["good"])
    with pytest.raises(ConfigError, match="LABEL=NUMBER"):
        OutcomeLabels.parse(["score"], ["good=high"])
    with pytest.raises(ConfigError, match="needs --reward"):
        OutcomeLabels.parse([], ["good=1"])


def test_found_takes_each_field_from_the_first_record_that_has_it() -> None:
    labels = OutcomeLabels(fields=("resolved", "score"))
    assert labels.found([{"score": 1}, {"resolved": True, "score": 0}]) == {
        "resolved": True,
        "score": 1,
    }
