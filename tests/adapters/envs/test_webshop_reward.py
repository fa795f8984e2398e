"""WebShop's reward, component by component: type, attributes, options, price, and the total."""

from __future__ import annotations

import dataclasses

import pytest

from hero_agents.adapters.envs.webshop_catalog import Goal, Product
from hero_agents.adapters.envs.webshop_reward import (
    attribute_matches,
    fuzzy_match,
    normalize_color,
    option_matches,
    price_match,
    purchase_reward,
    type_match,
)

SHOES = "Clothing, Shoes & Jewelry › Men › Shoes › Athletic › Running"
JACKETS = "Clothing, Shoes & Jewelry › Women › Clothing › Coats & Jackets › Rain"
TEA = "Grocery & Gourmet Food › Beverages › Tea › Green"


def product(**fields: object) -> Product:
    base = Product(
        asin="B0SHOE0001",
        title="Trailpeak Running Shoes, Lightweight, for Daily Runs",
        title_nouns=("trailpeak", "shoes"),
        category="fashion",
        query="running shoes",
        product_category=SHOES,
        attributes=("lightweight", "rubber sole"),
        options={"color": ("black", "navy blue"), "size": ("9", "10")},
        price=49.99,
        bullet_points=("LIGHTWEIGHT: Trailpeak running shoes.", "MESH UPPER: breathable mesh."),
        description="Trailpeak makes running shoes. Machine washable.",
    )
    return dataclasses.replace(base, **fields)


def goal(**fields: object) -> Goal:
    base = Goal(
        goal_id="g",
        asin="B0SHOE0001",
        instruction="i am looking for lightweight running shoes",
        query="running shoes",
        product_category=SHOES,
        name_nouns=("trailpeak", "shoes"),
        attributes=("lightweight", "non-slip"),
        options={"color": "navy blue", "size": "10"},
        price_upper=60.0,
    )
    return dataclasses.replace(base, **fields)


# ------------------------------------------------------------------ fuzzy matching, colors


def test_fuzzy_match_uses_token_sets_after_full_processing() -> None:
    assert fuzzy_match("non-slip", "Non Slip")  # case and punctuation do not count
    assert fuzzy_match("rubber sole", "sole rubber")  # word order does not count
    assert fuzzy_match("x-large", "large")  # a token subset matches: WebShop's own behaviour
    assert not fuzzy_match("lightweight", "heavyweight")
    assert not fuzzy_match("10", "11")


def test_colors_reduce_to_their_first_base_color_word() -> None:
    assert normalize_color("navy blue") == "blue"
    assert normalize_color("heather grey") == "grey"
    assert normalize_color("3 feet") == "3 feet"  # not a color: unchanged


# ------------------------------------------------------------------ type


def test_type_is_one_for_the_same_query_category_or_enough_shared_nouns() -> None:
    same = type_match(product(), goal())
    assert (same.r_type, same.query_match, same.category_match, same.title_score) == (
        1.0,
        True,
        True,
        1.0,
    )
    # another brand of the same kind: same query and breadcrumb, half the nouns
    other = type_match(product(title_nouns=("northwind", "shoes")), goal())
    assert other.r_type == 1.0 and other.title_score == 0.5
    # another query, one shared breadcrumb part, but title_score > 0.2
    jacket_goal = goal(query="rain jacket", product_category=JACKETS, name_nouns=("x", "shoes"))
    by_title = type_match(product(), jacket_goal)
    assert not by_title.query_match and not by_title.category_match and by_title.r_type == 1.0
    # another query, title_score only 0.2, but two shared breadcrumb parts
    boots = "Clothing, Shoes & Jewelry › Women › Shoes › Boots"
    few_nouns = ("a", "b", "c", "d", "shoes")
    by_category = type_match(
        product(), goal(query="boots", product_category=boots, name_nouns=few_nouns)
    )
    assert by_category.category_match and by_category.title_score == 0.2
    assert by_category.r_type == 1.0


def test_type_is_half_when_nothing_but_a_few_nouns_match() -> None:
    target = goal(query="green tea", product_category=TEA, name_nouns=("a", "b", "c", "d", "shoes"))
    match = type_match(product(), target)
    assert not match.query_match and not match.category_match and match.title_score == 0.2
    assert match.r_type == 0.5


def test_type_is_low_or_zero_when_the_nouns_barely_or_never_overlap() -> None:
    nouns = (*(f"n{i}" for i in range(10)), "shoes")  # 1 of 11 shared: < 0.1
    assert type_match(product(), goal(name_nouns=nouns)).r_type == 0.1
    none_shared = type_match(product(), goal(name_nouns=("tea",)))
    assert none_shared.title_score == 0.0 and none_shared.r_type == 0.0  # even with query match
    no_nouns = type_match(product(), goal(name_nouns=(), query="tea", product_category=TEA))
    assert no_nouns.title_score == 0.2 and no_nouns.r_type == 0.5


# ------------------------------------------------------------------ attributes, options, price


def test_attributes_match_fuzzily_or_by_occurring_in_title_bullets_or_description() -> None:
    assert attribute_matches(product(), goal(attributes=("lightweight",))) == 1  # attribute list
    assert attribute_matches(product(), goal(attributes=("sole rubber",))) == 1  # fuzzily
    assert attribute_matches(product(), goal(attributes=("daily runs",))) == 1  # title
    assert attribute_matches(product(), goal(attributes=("breathable mesh",))) == 1  # bullets
    assert attribute_matches(product(), goal(attributes=("machine washable",))) == 1  # text
    assert attribute_matches(product(), goal(attributes=("non-slip", "waterproof"))) == 0


def test_options_match_by_value_after_color_reduction() -> None:
    assert option_matches(["navy blue", "10"], ["navy blue", "10"]) == 2
    assert option_matches(["royal blue"], ["navy blue"]) == 1  # both reduce to "blue"
    assert option_matches(["black", "9"], ["navy blue", "10"]) == 0
    assert option_matches([], ["10"]) == 0  # an option left unchosen does not match


def test_price_is_within_an_inclusive_bound() -> None:
    assert price_match(49.99, goal())
    assert price_match(60.0, goal())
    assert not price_match(60.01, goal())


# ------------------------------------------------------------------ the total


def test_reward_is_matches_over_goal_size_times_type() -> None:
    perfect = purchase_reward(product(), {"color": "navy blue", "size": "10"}, goal())
    assert perfect.reward == pytest.approx(4 / 5)  # 'non-slip' is missing: 1+2+1 of 2+2+1
    assert (perfect.r_att, perfect.r_option, perfect.r_price) == (0.5, 1.0, True)
    partial = purchase_reward(product(price=75.0), {"color": "black"}, goal())
    assert partial.reward == pytest.approx(1 / 5)  # one attribute, no option, over budget
    assert partial.option_matches == 0 and partial.r_price is False
    halved = purchase_reward(
        product(),
        {"color": "navy blue", "size": "10"},
        goal(query="x", product_category=TEA, name_nouns=("a", "b", "c", "d", "shoes")),
    )
    assert halved.r_type == 0.5 and halved.reward == pytest.approx(0.5 * 4 / 5)
    no_options = purchase_reward(product(), {}, goal(options={}, attributes=("lightweight",)))
    assert no_options.r_option is None and no_options.reward == 1.0
    assert no_options.as_info()["r_option"] is None
