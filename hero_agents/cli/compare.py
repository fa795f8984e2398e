"""``hero compare CONFIG.yaml``: every arm for every seed on the same tasks and budget."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hero_agents.cli import wiring
from hero_agents.cli.console import console, escape, fail, phase_progress, stdout
from hero_agents.errors import HeroError


def compare(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG.yaml", help="Compare config.")],
    out: Annotated[
        Path | None, typer.Option(help="Comparison folder (default: runs/<config name>).")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Start over (deletes what hero wrote in --out).")
    ] = False,
) -> None:
    """Train every arm for every seed on the same tasks and budget; print one table."""
    from hero_agents.cli.train import iteration_line
    from hero_agents.loop.compare import prepare_compare, run_compare
    from hero_agents.loop.config import load_compare_config
    from hero_agents.outputs import check_not_input

    root = out if out is not None else Path("runs") / config_path.stem
    try:
        config = load_compare_config(config_path)
        env = None
        for arm in config.methods:  # every arm's checks, before any work
            env = wiring.check_config(config.run_config(arm, config.seeds[0]))
        check_not_input(root, [config_path])
        prepare_compare(config, root, overwrite=overwrite)
        with phase_progress() as progress:
            session = wiring.open_session(config.train, env=env, progress=progress)
            backend = wiring.open_backend(config.train, session.warm_model, root / "warm-start")
            try:
                table = run_compare(
                    config,
                    root,
                    session=session,
                    backend=backend,
                    llm_reflector=wiring.llm_reflectors(backend),
                    progress=progress,
                    on_run=lambda arm, seed: console.rule(escape(f"{arm} · seed {seed}")),
                    on_iteration=lambda row: console.print(iteration_line(row)),
                )
            finally:
                backend.close()
    except HeroError as error:
        raise fail(error) from None
    stdout.out(table)
    console.print(
        f"results: {escape(str(root / 'results.md'))} · plots: {escape(str(root))}/compare-*.png"
    )
