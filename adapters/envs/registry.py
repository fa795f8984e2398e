"""Environment names and `make_env`: the one place that maps a name to an environment."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from hero_agents.environment import Environment
from hero_agents.errors import ConfigError

if TYPE_CHECKING:
    from hero_agents.adapters.envs.user_sim import UserSimModel

DEFAULT_ENV = "tau2:mock"
"""The embedded default: tau2's mock domain plus generated variants (fast, offline)."""

ENV_NAMES: tuple[str, ...] = (
    "tau2:mock",
    "tau2:retail",
    "tau2:airline",
    "tau2:telecom",
    "webshop-lite",
)
"""Every fixed name `make_env` accepts; ``webshop:URL`` names a running WebShop app besides."""

WEBSHOP_PREFIX = "webshop:"


def make_env(name: str, *, user_sim: UserSimModel | None = None) -> Environment:
    """The environment called `name`: one of `ENV_NAMES`, or ``webshop:URL``.

    With `user_sim`, a tau2 environment runs interactively: the simulator plays the customer
    instead of the task's ticket opening the conversation.

    Task lists, variants and databases are loaded once per process; every episode still gets
    its own database copy.
    """
    if name.startswith(WEBSHOP_PREFIX):
        from hero_agents.adapters.envs.webshop_site import WebShopSiteEnvironment

        environment: Environment = WebShopSiteEnvironment(name.removeprefix(WEBSHOP_PREFIX))
    elif name in ENV_NAMES:
        environment = _make_env(name)
    else:
        raise ConfigError(
            f"unknown environment {name!r}; valid names: {', '.join(ENV_NAMES)}, "
            "or webshop:URL for a running WebShop app"
        )
    if user_sim is None:
        return environment
    if not name.startswith("tau2:"):
        raise ConfigError(f"{name} has no simulated user; a user simulator applies to tau2:*")
    if name == "tau2:telecom":
        raise ConfigError(
            "tau2:telecom runs in tau2's solo mode (the agent acts on the user's phone itself); "
            "its interactive mode needs a simulated user with tools, which is not supported"
        )
    from hero_agents.adapters.envs.tau2_interactive import Tau2InteractiveEnvironment

    return Tau2InteractiveEnvironment(
        environment,  # type: ignore[arg-type]
        user_sim.model,
        user_sim_name=user_sim.name,
    )


@functools.cache
def _make_env(name: str) -> Environment:
    if name == "webshop-lite":
        from hero_agents.adapters.envs.webshop_lite import WebShopLiteEnvironment

        return WebShopLiteEnvironment()
    # tau2 is imported here, not at package import: it takes seconds (litellm).
    from hero_agents.adapters.envs.mock_variants import mock_tasks_and_splits
    from hero_agents.adapters.envs.tau2_env import Tau2Environment, domain_splits, domain_tasks

    domain = name.removeprefix("tau2:")
    if domain == "mock":
        tasks, splits = mock_tasks_and_splits(domain_tasks("mock"))
        return Tau2Environment(name, "mock", tasks, splits)
    splits = domain_splits(domain)  # tau2's 'base' is train + test: not a held-out split
    return Tau2Environment(
        name, domain, domain_tasks(domain), {s: splits[s] for s in ("train", "test") if s in splits}
    )
