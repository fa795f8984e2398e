"""Environments behind `hero_agents.environment`: tau2-bench domains and WebShop.

``make_env("tau2:mock")`` (the embedded default), ``"tau2:retail"``, ``"tau2:airline"`` (ticket
mode, or interactive with ``user_sim=``), ``"tau2:telecom"`` (solo mode), ``"webshop-lite"``
(offline) and ``"webshop:URL"`` (a running WebShop app).

Importing this package prepares the process for tau2, before any tau2 import: litellm (imported
by tau2) is told to use its bundled model cost map instead of fetching it from the network, and
tau2's loguru output (debug lines on import and on every tool call) is disabled;
``loguru.logger.enable("tau2")`` turns it back on.
"""

import os

from loguru import logger as _loguru

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
_loguru.disable("tau2")

from hero_agents.adapters.envs.registry import DEFAULT_ENV, ENV_NAMES, make_env  # noqa: E402

__all__ = ["DEFAULT_ENV", "ENV_NAMES", "make_env"]
