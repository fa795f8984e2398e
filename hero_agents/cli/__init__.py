"""The ``hero`` command line: every typer command, and the wiring of concrete adapters.

Each command module builds what it needs through `hero_agents.cli.wiring` (the one place that
picks adapters) and runs the core's phases (`hero_agents.phases`) or loop. Modules import their
heavy dependencies inside the commands, so ``hero --help`` is fast.
"""

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
    from hero_agents.cli.compare import compare
    from hero_agents.cli.demo import demo
    from hero_agents.cli.distill import distill
    from hero_agents.cli.episodes import evaluate, rollout
    from hero_agents.cli.import_traces import import_command
    from hero_agents.cli.probe import probe
    from hero_agents.cli.reflect import reflect
    from hero_agents.cli.report import report
    from hero_agents.cli.serve import serve
    from hero_agents.cli.train import train, warmup

    commands = (rollout, reflect, probe, distill, serve, warmup, train, report, demo, compare)
    for command in commands:
        app.command()(command)
    app.command("import")(import_command)
    app.command("eval")(evaluate)


_register_commands()
