"""The ``hero`` command line. Each command lives beside the code it drives; this module only
builds the app and registers them (their modules import lightly, so ``hero --help`` is fast)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

app = typer.Typer(
    name="hero",
    help="Train tool-using LangGraph agents with HERO (hindsight-enhanced self-distillation).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at INFO level.")] = False,
) -> None:
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # a run's log file may take more than this
        handler.setLevel(level)


def _register_commands() -> None:
    from hero_agents.adapters.importers.command import import_command
    from hero_agents.adapters.policy.serve_command import serve
    from hero_agents.distill.command import distill
    from hero_agents.eval_command import evaluate
    from hero_agents.loop.commands import train, warmup
    from hero_agents.loop.compare import compare
    from hero_agents.loop.demo import demo
    from hero_agents.loop.report import report
    from hero_agents.reflection.command import reflect
    from hero_agents.rollout_command import rollout

    for command in (rollout, reflect, distill, serve, warmup, train, report, demo, compare):
        app.command()(command)
    app.command("import")(import_command)
    app.command("eval")(evaluate)


_register_commands()
