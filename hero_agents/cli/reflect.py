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
from rich.text import Text

from hero_agents.cli.console import console, escape, fail, phase_progress, stdout
from hero_agents.environment import Environment
from hero_agents.errors import ConfigError, HeroError, TraceFormatError
from hero_agents.outputs import check_output_file, start_output_file, write_mode
from hero_agents.phases.reflect import reflect_trajectories
from hero_agents.redaction import RedactionReport, RedactionRule, Redactor
from hero_agents.reflection.base import ReflectionSummary, Reflector
from hero_agents.reflection.cache import default_cache_dir
from hero_agents.reflection.grounded import GroundedReflector
from hero_agents.reflection.redacting import RedactingReflector
from hero_agents.reflection.reference import reflector_label
from hero_agents.reflection.spec import SPEC_FORMS, ReflectorSpec, parse_reflector_spec
from hero_agents.storage import iter_trajectories, read_trajectories

Traces = Annotated[Path, typer.Argument(help="Trajectories JSONL, e.g. from `hero rollout`.")]
ReflectorOption = Annotated[
    str, typer.Option("--reflector", "-r", help=f"Which reflector. Forms:\n{SPEC_FORMS}")
]
Out = Annotated[Path, typer.Option("--out", "-o", help="JSONL file for the diagnosed.")]
Demos = Annotated[
    Path | None,
    typer.Option(help="demo: trajectories to draw successful demos from (default: TRACES)."),
]
EnvOption = Annotated[
    str | None,
    typer.Option(
        help="reference: the environment that knows the reference solutions (default: the one "
        "the trajectories name)."
    ),
]
Concurrency = Annotated[int, typer.Option(min=1, help="Trajectories in flight at once.")]
Timeout = Annotated[float, typer.Option(min=0.001, help="Seconds per HTTP request.")]
MaxRetries = Annotated[int, typer.Option(min=0, help="Retries on 429/5xx/timeouts, with backoff.")]
ContextTokens = Annotated[
    int | None, typer.Option(min=256, help="Reflector context; longer episodes are windowed.")
]
Structured = Annotated[
    str, typer.Option(help="Structured output: auto, json_schema, json_object or off.")
]
Batching = Annotated[
    str,
    typer.Option("--batching", "--mode", help="batched (one call per trajectory) or per-turn."),
]
CacheDir = Annotated[
    Path | None, typer.Option(help="Diagnosis cache (default: $HERO_CACHE/reflections).")
]
NoCache = Annotated[bool, typer.Option(help="Neither read nor write the cache.")]
ApiKeyEnv = Annotated[
    str | None,
    typer.Option(help="Environment variable holding the API key (default: see --reflector)."),
]
Append = Annotated[
    bool,
    typer.Option(help="Add to an existing --out, skipping trajectories already in it (resume)."),
]
Overwrite = Annotated[bool, typer.Option(help="Replace an existing --out.")]
Failures = Annotated[
    Path | None, typer.Option(help="Also write the failed ids and reasons here (JSONL).")
]
AllowFailures = Annotated[
    bool, typer.Option(help="Exit 0 even if some trajectories could not be diagnosed.")
]
PricePrompt = Annotated[
    float | None, typer.Option(help="USD per million prompt tokens, to print a cost.")
]
PriceCompletion = Annotated[
    float | None, typer.Option(help="USD per million completion tokens, to print a cost.")
]
Redact = Annotated[
    bool | None,
    typer.Option(
        "--redact/--no-redact",
        help="Redact personal data and secrets before reflection (default: only for hosted "
        "reflectors).",
    ),
]
Device = Annotated[
    str, typer.Option(help="An in-process reflector's device (auto, cpu, cuda or cuda:N).")
]
RedactPattern = Annotated[
    list[str] | None,
    typer.Option(help="Also redact KIND=REGEX (repeatable; a group 'value' marks the part)."),
]


def reflect(
    traces: Traces,
    reflector: ReflectorOption,
    out: Out = Path("diagnosed.jsonl"),
    demos: Demos = None,
    env: EnvOption = None,
    concurrency: Concurrency = 8,
    timeout: Timeout = 120.0,
    max_retries: MaxRetries = 4,
    context_tokens: ContextTokens = None,
    structured: Structured = "auto",
    batching: Batching = "batched",
    cache_dir: CacheDir = None,
    no_cache: NoCache = False,
    api_key_env: ApiKeyEnv = None,
    append: Append = False,
    overwrite: Overwrite = False,
    failures: Failures = None,
    allow_failures: AllowFailures = False,
    price_prompt: PricePrompt = None,
    price_completion: PriceCompletion = None,
    redact: Redact = None,
    device: Device = "auto",
    redact_pattern: RedactPattern = None,
) -> None:
    """Diagnose every turn of TRACES in hindsight; write them with diagnoses to --out."""
    try:
        spec = parse_reflector_spec(reflector)
        if not traces.exists():
            raise TraceFormatError(f"{traces}: no such trace file")
        mode = write_mode(append=append, overwrite=overwrite)
        inputs = [traces, *([demos] if demos else [])]
        check_output_file(out, mode=mode, inputs=inputs)
        if failures is not None:
            check_output_file(failures, mode="overwrite", inputs=inputs, flag="--failures")
        total = _count_readable(traces)
        if total == 0:
            console.print(
                f"[yellow]warning:[/] {escape(str(traces))} holds no trajectory", soft_wrap=True
            )
        reflector_ = _load(spec, traces, locals())
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
    prices = (price_prompt, price_completion)
    _report(summary, reflector_, spec=spec, out=out, redact=redact, prices=prices)
    if summary.failures and not allow_failures:
        raise typer.Exit(code=1)


def _load(spec: ReflectorSpec, traces: Path, arguments: dict[str, Any]) -> Reflector:
    """The reflector `spec` names, built with the command's options (`arguments`)."""
    from hero_agents.adapters.reflectors import load_reflector

    api_key = None
    if arguments["api_key_env"]:
        api_key = os.environ.get(arguments["api_key_env"])
        if not api_key:
            raise ConfigError(f"--api-key-env {arguments['api_key_env']}: that variable is not set")
    pool = read_trajectories(arguments["demos"] or traces) if spec.kind == "demo" else None
    env = _environment(arguments["env"], traces) if spec.privileged else None
    with console.status(Text(f"loading reflector {spec}")):
        return load_reflector(
            spec,
            demos=pool,
            env=env,
            api_key=api_key,
            redaction=_redaction(arguments["redact"], arguments["redact_pattern"] or []),
            device=arguments["device"],
            **_llm_options(spec, arguments),
        )


def _environment(name: str | None, traces: Path) -> Environment:
    """The environment a privileged reflector reads reference solutions from: `name`, or the
    one every trajectory of `traces` names."""
    from hero_agents.cli.wiring import environment

    if name is None:
        names = {trajectory.env for trajectory in iter_trajectories(traces)}
        if len(names) != 1 or None in names:
            found = ", ".join(sorted(str(n) for n in names)) or "none"
            raise ConfigError(
                f"the reference reflector needs one environment; {traces} names {found}: pass --env"
            )
        name = names.pop()
    return environment(str(name))


def _report(
    summary: ReflectionSummary,
    reflector: Reflector,
    *,
    spec: ReflectorSpec,
    out: Path,
    redact: bool | None,
    prices: tuple[float | None, float | None],
) -> None:
    """The summary table, what was redacted, and the trajectories not diagnosed."""
    _print_summary(summary, spec=reflector_label(str(spec)), out=out, prices=prices)
    redacting = reflector.inner if isinstance(reflector, GroundedReflector) else reflector
    if isinstance(redacting, RedactingReflector):
        _print_redaction(redacting.report, spec=str(spec))
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


def _llm_options(spec: ReflectorSpec, arguments: dict[str, Any]) -> dict[str, Any]:
    """The `OpenAIReflectorConfig` settings the command's options give a model-backed
    reflector (the one beneath ``grounded+`` included); {} for the others."""
    model = spec.inner.model if spec.kind == "grounded" and spec.inner else spec.model
    if model is None:
        return {"max_concurrency": arguments["concurrency"]} if spec.kind == "grounded" else {}
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
    in_process = model.in_process or model.kind == "self"  # its weights may change: no cache
    if not arguments["no_cache"] and (cache_dir is not None or not in_process):
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
