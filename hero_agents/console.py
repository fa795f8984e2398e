"""What every ``hero`` command shares: the consoles, the progress bar, the error exit and the
check that keeps an existing output file from being clobbered.

Progress, status and errors go to `console` (stderr); results (tables) go to `stdout`, so
``hero ... > results.txt`` keeps only the results.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hero_agents.errors import HeroError

console = Console(stderr=True)
"""Progress bars, status lines and errors."""

stdout = Console()
"""A command's results: tables and summaries."""


def progress_bar() -> Progress:
    """The progress bar every long command shows (on stderr); tasks take a ``status`` field."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
    )


def fail(error: HeroError) -> typer.Exit:
    """Print a user-facing error and return the exit to raise (code 2)."""
    console.print(f"[bold red]error:[/] {error}", soft_wrap=True)
    return typer.Exit(code=2)


def check_output(path: Path, *, append: bool, overwrite: bool) -> None:
    """Refuse to silently clobber an existing output file."""
    if append and overwrite:
        raise HeroError("pass at most one of --append and --overwrite")
    if path.exists() and not (append or overwrite):
        raise HeroError(f"{path} exists: pass --append to add to it or --overwrite to replace it")
    if overwrite:
        path.unlink(missing_ok=True)
