"""The real-WebShop adapter (``webshop:URL``) against a local server speaking WebShop's web-app
protocol over webshop-lite's catalog: the same actions give the same pages and the same reward."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from webshop_app import WebShopApp

from hero_agents.adapters.envs import make_env
from hero_agents.adapters.envs.webshop_actions import InvalidAction
from hero_agents.adapters.envs.webshop_lite import WebShopLiteEnvironment
from hero_agents.adapters.envs.webshop_site import WebShopSiteEnvironment
from hero_agents.adapters.policy.testing import ScriptedChatModel
from hero_agents.environment import Environment
from hero_agents.errors import ConfigError, EnvError
from hero_agents.phases.rollout import cycling_slots, run_episodes


@pytest.fixture(scope="module")
def lite() -> WebShopLiteEnvironment:
    return make_env("webshop-lite")  # type: ignore[return-value]


@pytest.fixture
def app(lite: WebShopLiteEnvironment) -> Iterator[WebShopApp]:
    with WebShopApp(lite.catalog) as server:
        yield server


@pytest.fixture
def site(app: WebShopApp) -> Iterator[WebShopSiteEnvironment]:
    env = make_env(f"webshop:{app.url}")
    assert isinstance(env, WebShopSiteEnvironment)
    yield env
    env.close()


def fixed(lite: WebShopLiteEnvironment, index: int) -> tuple[str, str]:
    """The site's task id and the lite task id of the same goal."""
    return f"fixed_{index}", lite.catalog.goals[index].goal_id


def test_name_splits_and_task_ids(site: WebShopSiteEnvironment, app: WebShopApp) -> None:
    assert isinstance(site, Environment) and site.name == f"webshop:{app.url}"
    test, train, every = (site.task_ids(s) for s in ("test", "train", "all"))
    assert test[0] == "fixed_0" and test[-1] == "fixed_499" and len(test) == 500
    assert train[0] == "fixed_1500" and len(every) == 12087
    for bad in ("fixed_x", "task_1", "fixed_99999"):
        with pytest.raises(ConfigError, match="fixed_N"):
            site.new_episode(bad)
    with pytest.raises(ConfigError, match="http"):
        make_env("webshop:localhost:3000")


def test_same_actions_same_pages_same_reward_as_the_lite_session(
    site: WebShopSiteEnvironment, lite: WebShopLiteEnvironment, app: WebShopApp
) -> None:
    for index in (0, 7, 33):
        site_id, lite_id = fixed(lite, index)
        ours, reference = site.new_episode(site_id), lite.new_episode(lite_id)
        assert ours.initial_messages[0].content == reference.initial_messages[0].content
        for call in lite.gold_actions(lite_id):
            action, (argument,) = call["name"], call["args"].values()
            page, expected = ours.act(action, argument), reference.session.act(action, argument)
            if reference.session.page in ("search", "results"):
                assert page == expected
            elif reference.session.page == "item":  # WebShop's product pages have Reviews too
                assert page == expected.replace(
                    "Features [SEP] Buy Now", "Features [SEP] Reviews [SEP] Buy Now"
                )
        score = ours.score([], termination="stop")
        assert score.reward == reference.score([], termination="stop").reward == 1.0
        assert page.startswith("Thank you for shopping with us!") and page.endswith("[SEP] 1.0")
        assert "Target" not in page and "Reward Details" not in page  # hidden on the page
    # the adapter submitted forms and followed links as a browser does
    methods = {method for method, _ in app.requests}
    assert methods == {"GET", "POST"}
    assert any(path.startswith("/done/") for _, path in app.requests)


def test_a_partial_purchase_gets_the_apps_partial_reward(
    site: WebShopSiteEnvironment, lite: WebShopLiteEnvironment
) -> None:
    index = next(i for i, g in enumerate(lite.catalog.goals) if g.options)
    site_id, lite_id = fixed(lite, index)
    ours, reference = site.new_episode(site_id), lite.new_episode(lite_id)
    goal = lite.catalog.goals[index]
    for action, argument in (("search", goal.query), ("click", goal.asin), ("click", "Buy Now")):
        ours.act(action, argument)  # type: ignore[arg-type]
        reference.session.act(action, argument)  # type: ignore[arg-type]
    expected = reference.score([], termination="stop").reward
    assert 0.0 < expected < 1.0
    assert ours.score([], termination="stop").reward == expected


def test_sub_pages_options_and_navigation(
    site: WebShopSiteEnvironment, lite: WebShopLiteEnvironment
) -> None:
    index = next(i for i, g in enumerate(lite.catalog.goals) if len(g.options) == 2)
    goal = lite.catalog.goals[index]
    product = lite.catalog.products[goal.asin]
    episode = site.new_episode(f"fixed_{index}")
    episode.act("search", goal.query)
    item = episode.act("click", goal.asin.lower())  # names are matched case-insensitively
    features = episode.act("click", "features")
    assert all(bullet in features for bullet in product.bullet_points)
    assert episode.act("click", "< Prev") == item
    for value in goal.options.values():
        episode.act("click", value)
    assert episode.act("click", "Back to Search") == episode.initial_messages[0].content
    assert episode.score([], termination="stop").reward == 0.0  # nothing bought


def test_invalid_actions_and_server_errors_are_named(
    site: WebShopSiteEnvironment, lite: WebShopLiteEnvironment, app: WebShopApp
) -> None:
    episode = site.new_episode("fixed_3")
    with pytest.raises(InvalidAction, match="offers: nothing"):
        episode.act("click", "Buy Now")
    episode.act("search", lite.catalog.goals[3].query)
    with pytest.raises(InvalidAction, match="only available on the search page"):
        episode.act("search", "again")
    with pytest.raises(InvalidAction, match="'back to search'"):
        episode.act("click", "B0NOTTHERE")
    app.fail_next = True
    with pytest.raises(EnvError, match="HTTP 500"):
        episode.act("click", "Next >")
    unreachable = WebShopSiteEnvironment("http://127.0.0.1:9", timeout_s=2)
    with pytest.raises(EnvError, match="could not be reached"):
        unreachable.new_episode("fixed_0")
    unreachable.close()


def test_rollout_on_the_site_through_the_agent_graph(
    site: WebShopSiteEnvironment, lite: WebShopLiteEnvironment
) -> None:
    site_id, lite_id = fixed(lite, 12)
    policy = ScriptedChatModel(responses=lite.gold_messages(lite_id))
    (trajectory,) = run_episodes(
        site, policy, cycling_slots("t", [site_id], 1), max_turns=10
    ).trajectories
    assert trajectory.reward == 1.0 and trajectory.env == site.name
    assert trajectory.termination == "stop"
    done_page = trajectory.turns[-2].observation[0]["content"]
    assert done_page.startswith("Thank you for shopping with us!")
