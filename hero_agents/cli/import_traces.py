"""``hero import FORMAT SRC --out traces.jsonl``: production logs to trajectories.

SRC is a file, a folder (every ``.jsonl``/``.ndjson``/``.json`` file under it, also ``.gz``) or
a quoted glob of shards. Trajectories are appended to --out as each is finished. Records that
cannot be imported are reported with their file and line (all of them with ``--problems
FILE``) and never stop the import. Exit status: 0 when every record was usable; 1 when some
were not (0 with ``--allow-problems``); 2 for a bad option or source.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hero_agents.adapters.importers.outcome import OutcomeLabels
from hero_agents.adapters.importers.pipeline import (
    DEFAULT_MEMORY_BYTES,
    ImportSettings,
    import_traces,
)
from hero_agents.adapters.importers.registry import FORMATS, get_format
from hero_agents.adapters.importers.report import ImportReport, Problem
from hero_agents.adapters.importers.sources import expand_sources, total_bytes
from hero_agents.cli.console import console, escape, fail, progress_bar, stdout
from hero_agents.errors import ConfigError, HeroError
from hero_agents.outputs import check_output_file, start_output_file, write_mode
from hero_agents.storage import TrajectoryWriter

_FORMATS_HELP = "; ".join(f"{name}: {fmt.description}" for name, fmt in FORMATS.items())


Format = Annotated[str, typer.Argument(metavar="FORMAT", help=_FORMATS_HELP)]
Source = Annotated[
    str, typer.Argument(metavar="SRC", help="A file, a folder of shards, or a quoted glob.")
]
Out = Annotated[Path, typer.Option("--out", "-o", help="Trajectories JSONL to write.")]
Reward = Annotated[
    list[str] | None,
    typer.Option(
        help="Field holding an outcome label that becomes the reward, e.g. "
        "feedback_stats.user_score.avg (repeatable; the first found wins)."
    ),
]
RewardLabel = Annotated[
    list[str] | None,
    typer.Option(help="Map a text label to a reward: LABEL=NUMBER (repeatable)."),
]
ThreadKey = Annotated[
    list[str] | None,
    typer.Option(help="Field naming a record's thread (repeatable; replaces the defaults)."),
]
Threads = Annotated[bool, typer.Option(help="Join the traces of a thread into one trajectory.")]
Node = Annotated[
    list[str] | None,
    typer.Option(help="Keep only the model calls of this LangGraph node (repeatable)."),
]
GroupMemory = Annotated[
    int, typer.Option(min=1, help="MiB of records held at once while grouping traces.")
]
Append = Annotated[bool, typer.Option(help="Add to an existing --out.")]
Overwrite = Annotated[bool, typer.Option(help="Replace an existing --out.")]
Problems = Annotated[
    Path | None, typer.Option(help="Write every record not imported here (JSONL).")
]
AllowProblems = Annotated[
    bool, typer.Option(help="Exit 0 even if some records could not be imported.")
]


def import_command(
    format_name: Format,
    src: Source,
    out: Out = Path("traces.jsonl"),
    reward: Reward = None,
    reward_label: RewardLabel = None,
    thread_key: ThreadKey = None,
    threads: Threads = True,
    node: Node = None,
    group_memory: GroupMemory = DEFAULT_MEMORY_BYTES >> 20,
    append: Append = False,
    overwrite: Overwrite = False,
    problems: Problems = None,
    allow_problems: AllowProblems = False,
) -> None:
    """Import production traces (OpenAI chat JSONL, LangSmith runs, OpenTelemetry GenAI spans)
    as trajectories that `hero reflect` and `hero distill` take, with no environment."""
    try:
        get_format(format_name)
        sources = expand_sources(src)
        outcome = None
        if reward or reward_label:
            outcome = OutcomeLabels.parse(reward or [], reward_label or [])
        settings = ImportSettings(
            outcome=outcome,
            thread_keys=tuple(thread_key) if thread_key else None,
            threads=threads,
            nodes=frozenset(node) if node else None,
            memory_bytes=group_memory << 20,
        )
        if problems is not None and problems.resolve() == out.resolve():
            raise ConfigError("--problems and --out must be different files")
        mode = write_mode(append=append, overwrite=overwrite)
        check_output_file(out, mode=mode, inputs=sources)
        if problems is not None:
            check_output_file(problems, mode="overwrite", inputs=sources, flag="--problems")
        start_output_file(out, mode=mode)
    except HeroError as error:
        raise fail(error) from None

    started = time.perf_counter()
    problem_file = problems.open("w", encoding="utf-8") if problems is not None else None

    def keep(problem: Problem) -> None:
        if problem_file is not None:
            problem_file.write(json.dumps(asdict(problem)) + "\n")

    try:
        with TrajectoryWriter(out) as writer, progress_bar() as progress:
            reading = progress.add_task(
                f"import {format_name}", total=total_bytes(sources), status="bytes read"
            )
            written = progress.add_task("trajectories", total=None, status="")

            def on_progress(kind: str, amount: int) -> None:
                progress.update(reading if kind == "bytes" else written, advance=amount)

            report = import_traces(
                format_name,
                sources,
                writer.write,
                settings,
                on_problem=keep,
                on_progress=on_progress,
            )
            progress.update(reading, completed=total_bytes(sources))
    except HeroError as error:
        raise fail(error) from None
    finally:
        if problem_file is not None:
            problem_file.close()
    _print_report(report, sources=len(sources), out=out, seconds=time.perf_counter() - started)
    if report.problem_count and not allow_problems:
        raise typer.Exit(code=1)


def _print_report(report: ImportReport, *, sources: int, out: Path, seconds: float) -> None:
    rate = report.trajectories / seconds if seconds > 0 else 0.0
    rows = [
        ("files", str(sources)),
        ("records", str(report.records)),
        ("trajectories", f"{report.trajectories} ({rate:.0f}/s)"),
        ("turns", str(report.turns)),
        ("with a reward from a label", str(report.rewarded)),
        ("failed model calls (no action)", str(report.failed_calls)),
        ("not imported", str(report.problem_count)),
    ]
    rows += [(f"ignored: {reason}", str(count)) for reason, count in sorted(report.ignored.items())]
    table = Table(title=f"hero import → {out}", show_header=False)
    table.add_column("")
    table.add_column("", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    stdout.print(table)
    for kind, count in sorted(report.problems.items()):
        console.print(f"[red]{escape(kind)}[/] ({count}):", soft_wrap=True)
        for problem in report.examples[kind]:
            console.print(
                f"  {escape(problem.location)}: {escape(problem.message)}", soft_wrap=True
            )
        if count > len(report.examples[kind]):
            console.print(f"  ... and {count - len(report.examples[kind])} more (see --problems)")
