"""What every ``hero`` command shares: the consoles, the progress bars and the error exit.

Progress, status and errors go to `console` (stderr); results (tables) go to `stdout`, so
``hero ... > results.txt`` keeps only the results. Neither console turns ``:name:`` into emoji,
and text that came from the user (a spec, a path, an error message) is printed with
`escape`, so it is shown as written, never read as markup. Progress bars' descriptions and
status spinners (``console.status(Text(...))``) are plain text: rich reads their strings as
markup with emoji, whatever the console's setting.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hero_agents.errors import HeroError

console = Console(stderr=True, emoji=False)
"""Progress bars, status lines and errors."""

stdout = Console(emoji=False)
"""A command's results: tables and summaries."""

__all__ = ["console", "escape", "fail", "phase_progress", "progress_bar", "stdout"]


def progress_bar() -> Progress:
    """The progress bar every long command shows (on stderr); tasks take a ``status`` field."""
    return Progress(
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}", markup=False),
        console=console,
    )


@contextlib.contextmanager
def phase_progress() -> Iterator[Callable[[str, int], Callable[[str], None]]]:
    """``progress(phase, total)`` adds a bar and returns ``advance(status)``, called once per
    finished item: the `hero_agents.phases.Progress` of the commands."""
    with progress_bar() as bars:

        def start(phase: str, total: int) -> Callable[[str], None]:
            task = bars.add_task(phase, total=total, status="")
            return lambda status: bars.update(task, advance=1, status=status)

        yield start


def fail(error: HeroError) -> typer.Exit:
    """Print a user-facing error and return the exit to raise (code 2)."""
    console.print(f"[bold red]error:[/] {escape(str(error))}", soft_wrap=True)
    return typer.Exit(code=2)
