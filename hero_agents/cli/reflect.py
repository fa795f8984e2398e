"""``hero reflect``: diagnose every turn of recorded trajectories.

Writes the same trajectories with ``diagnoses`` filled, appending each as soon as it is
diagnosed (so in completion order, not input order), through `hero_agents.phases.reflect`. A
trajectory that could not be diagnosed is not written: it is named, with the reason, in the
summary (and in ``--failures FILE``).
Exit status: 0 when every trajectory was diagnosed; 1 when some failed (0 with
``--allow-failures``); 2 for a bad spec, file or option, or an error that stops the run (a
refused key, an unreachable server). ``--append`` resumes: ids already in ``--out`` are skipped,
and the diagnosis cache makes a rerun after an interruption cost no call for what was done.
Trajectories are read lazily, so memory does not grow with the size of TRACES.

Hosted reflectors (``openai:``, ``openai-compatible:`` off loopback) see redacted trajectories
by default (`hero_agents.redaction`): ``--no-redact`` sends them as they are, ``--redact``
redacts for any reflector, ``--redact-pattern KIND=REGEX`` adds patterns (and turns redaction
on). Diagnoses keep the placeholders the reflector saw; a table says what was redacted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.table import Table

from hero_agents.cli.console import console, escape, fail, phase_progress, stdout
from hero_agents.errors import ConfigError, HeroError, TraceFormatError
from hero_agents.outputs import check_output_file, start_output_file, write_mode
from hero_agents.phases.reflect import reflect_trajectories
from hero_agents.redaction import RedactionReport, RedactionRule, Redactor
from hero_agents.reflection.base import ReflectionSummary
from hero_agents.reflection.cache import default_cache_dir
from hero_agents.reflection.redacting import RedactingReflector
from hero_agents.reflection.spec import SPEC_FORMS, parse_reflector_spec
from hero_agents.storage import iter_trajectories, read_trajectories

_LLM_KINDS = ("openai", "openai-compatible", "self")


def reflect(
    traces: Annotated[Path, typer.Argument(help="Trajectories JSONL, e.g. from `hero rollout`.")],
    reflector: Annotated[
        str, typer.Option("--reflector", "-r", help=f"Which reflector. Forms:\n{SPEC_FORMS}")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="JSONL file for the diagnosed.")] = Path(
        "diagnosed.jsonl"
    ),
    demos: Annotated[
        Path | None,
        typer.Option(help="demo: trajectories to draw successful demos from (default: TRACES)."),
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Trajectories in flight at once.")] = 8,
    timeout: Annotated[float, typer.Option(min=0.001, help="Seconds per HTTP request.")] = 120.0,
    max_retries: Annotated[
        int, typer.Option(min=0, help="Retries on 429/5xx/timeouts, with backoff.")
    ] = 4,
    context_tokens: Annotated[
        int | None, typer.Option(min=256, help="Reflector context; longer episodes are windowed.")
    ] = None,
    structured: Annotated[
        str, typer.Option(help="Structured output: auto, json_schema, json_object or off.")
    ] = "auto",
    batching: Annotated[
        str,
        typer.Option("--batching", "--mode", help="batched (one call per trajectory) or per-turn."),
    ] = "batched",
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="Diagnosis cache (default: $HERO_CACHE/reflections)."),
    ] = None,
    no_cache: Annotated[bool, typer.Option(help="Neither read nor write the cache.")] = False,
    api_key_env: Annotated[
        str | None,
        typer.Option(help="Environment variable holding the API key (default: see --reflector)."),
    ] = None,
    append: Annotated[
        bool,
        typer.Option(
            help="Add to an existing --out, skipping trajectories already in it (resume)."
        ),
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out.")] = False,
    failures: Annotated[
        Path | None, typer.Option(help="Also write the failed ids and reasons here (JSONL).")
    ] = None,
    allow_failures: Annotated[
        bool, typer.Option(help="Exit 0 even if some trajectories could not be diagnosed.")
    ] = False,
    price_prompt: Annotated[
        float | None, typer.Option(help="USD per million prompt tokens, to print a cost.")
    ] = None,
    price_completion: Annotated[
        float | None, typer.Option(help="USD per million completion tokens, to print a cost.")
    ] = None,
    redact: Annotated[
        bool | None,
        typer.Option(
            "--redact/--no-redact",
            help="Redact personal data and secrets before reflection (default: only for "
            "hosted reflectors).",
        ),
    ] = None,
    device: Annotated[
        str,
        typer.Option(help="self: where the policy reads (auto, cpu, cuda or cuda:N)."),
    ] = "auto",
    redact_pattern: Annotated[
        list[str] | None,
        typer.Option(help="Also redact KIND=REGEX (repeatable; a group 'value' marks the part)."),
    ] = None,
) -> None:
    """Diagnose every turn of TRACES in hindsight; write them with diagnoses to --out."""
    from hero_agents.adapters.reflectors import load_reflector

    try:
        spec = parse_reflector_spec(reflector)
        if not traces.exists():
            raise TraceFormatError(f"{traces}: no such trace file")
        mode = write_mode(append=append, overwrite=overwrite)
        inputs = [traces, *([demos] if demos else [])]
        check_output_file(out, mode=mode, inputs=inputs)
        if failures is not None:
            check_output_file(failures, mode="overwrite", inputs=inputs, flag="--failures")
        redaction = _redaction(redact, redact_pattern or [])
        options = _llm_options(spec.kind, locals())
        api_key = None
        if api_key_env:
            api_key = os.environ.get(api_key_env)
            if not api_key:
                raise ConfigError(f"--api-key-env {api_key_env}: that variable is not set")
        pool = read_trajectories(demos or traces) if spec.kind == "demo" else None
        total = _count_readable(traces)
        if total == 0:
            console.print(f"[yellow]warning:[/] {escape(str(traces))} holds no trajectory")
        with console.status(f"loading reflector {escape(str(spec))}"):
            reflector_ = load_reflector(
                spec, demos=pool, api_key=api_key, redaction=redaction, device=device, **options
            )
        # Last: --overwrite deletes the old file only once everything else is valid.
        start_output_file(out, mode=mode)
        if failures is not None:
            failures.unlink(missing_ok=True)
    except HeroError as error:
        raise fail(error) from None

    summary = ReflectionSummary()
    try:
        with reflector_, phase_progress() as progress:
            reflect_trajectories(
                reflector_,
                iter_trajectories(traces),
                out,
                failures=failures,
                total=total,
                progress=progress,
                phase=f"reflect ({spec})",
                summary=summary,
            )
    except HeroError as error:
        console.print(
            f"{summary.diagnosed} trajectories were written to {escape(str(out))}; rerun with "
            "--append to continue"
        )
        raise fail(error) from None

    _print_summary(summary, spec=str(spec), out=out, prices=(price_prompt, price_completion))
    if isinstance(reflector_, RedactingReflector):
        _print_redaction(reflector_.report, spec=str(spec))
    elif redact is False:
        console.print(
            f"[yellow]--no-redact:[/] trajectories went to {escape(str(spec))} unredacted"
        )
    for trajectory_id, reason in list(summary.failures.items())[:50]:
        console.print(
            f"[red]not diagnosed:[/] {escape(trajectory_id)}: {escape(reason)}", soft_wrap=True
        )
    if len(summary.failures) > 50:
        console.print(f"... and {len(summary.failures) - 50} more (see --failures FILE)")
    if summary.failures and not allow_failures:
        raise typer.Exit(code=1)


def _llm_options(kind: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The `OpenAIReflectorConfig` settings the command's options give an LLM reflector."""
    if kind not in _LLM_KINDS:
        return {}
    options: dict[str, Any] = {
        "max_concurrency": arguments["concurrency"],
        "timeout_s": arguments["timeout"],
        "max_retries": arguments["max_retries"],
        "structured_output": arguments["structured"],
        "batching": arguments["batching"],
    }
    if arguments["context_tokens"] is not None:
        options["context_tokens"] = arguments["context_tokens"]
    cache_dir = arguments["cache_dir"]
    if not arguments["no_cache"] and (cache_dir is not None or kind != "self"):
        options["cache_dir"] = cache_dir or default_cache_dir()
    return options


def _redaction(redact: bool | None, patterns: list[str]) -> Redactor | Literal["auto"] | None:
    """What `load_reflector` is asked to do: the CLI's redaction switches, checked."""
    extra = [RedactionRule.parse(pattern) for pattern in patterns]
    if redact is False:
        if extra:
            raise ConfigError("--no-redact and --redact-pattern contradict each other")
        return None
    if redact or extra:
        return Redactor(extra=extra)
    return "auto"


def _count_readable(path: Path) -> int:
    """How many trajectories `path` holds, reading each one: a bad record stops the command
    before anything is written (the error names its file and line)."""
    return sum(1 for _ in iter_trajectories(path))


def _print_redaction(report: RedactionReport, *, spec: str) -> None:
    table = Table(title=escape(f"redacted before reflection by {spec}"), show_header=False)
    table.add_column("")
    table.add_column("", justify="right")
    table.add_row(
        "trajectories with redactions", f"{report.redacted_trajectories} of {report.trajectories}"
    )
    for kind, values in sorted(report.values.items()):
        table.add_row(kind, f"{values} values")
    stdout.print(table)


def _print_summary(
    summary: ReflectionSummary,
    *,
    spec: str,
    out: Path,
    prices: tuple[float | None, float | None],
) -> None:
    usage = summary.usage
    per_trajectory = usage.calls / summary.trajectories if summary.trajectories else 0.0
    rows = [
        ("trajectories", str(summary.trajectories)),
        ("diagnosed", f"{summary.diagnosed} ({summary.cached} from cache)"),
        ("failed", str(len(summary.failures))),
        ("turns diagnosed", str(summary.turns)),
        ("unnecessary", f"{summary.unnecessary_share:.1%}"),
        ("invalid", f"{summary.invalid_share:.1%}"),
        ("model calls", f"{usage.calls} ({per_trajectory:.2f} per trajectory)"),
        ("HTTP requests", str(usage.requests)),
        ("format retries / per-turn fallbacks", f"{usage.format_retries} / {usage.turn_fallbacks}"),
        ("prompt tokens", str(usage.prompt_tokens)),
        ("completion tokens", str(usage.completion_tokens)),
    ]
    if summary.skipped:
        rows.insert(1, ("already in --out (skipped)", str(summary.skipped)))
    if prices[0] is not None and prices[1] is not None:
        rows.append(("cost (USD)", f"{summary.cost_usd(prices[0], prices[1]):.4f}"))
    table = Table(title=escape(f"hero reflect · {spec} → {out}"), show_header=False)
    table.add_column("")
    table.add_column("", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    stdout.print(table)
