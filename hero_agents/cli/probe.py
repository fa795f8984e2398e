"""``hero probe TRACES``: check that a reflector's hints push the policy toward better actions,
before any training (forward passes only). See `hero_agents.probe` for what each figure means.

Without ``--reflector``, TRACES must hold diagnosed trajectories (``hero reflect``'s output).
With ``--reflector SPEC`` (repeatable), the command reflects on TRACES with each one first and
compares them side by side on the turns they all diagnosed. Sections that need a reference
solution are left out where the environment has none (production traces).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from hero_agents.cli import wiring
from hero_agents.cli.console import console, escape, fail, phase_progress, stdout
from hero_agents.distill.config import DEFAULT_HINDSIGHT_NOTE, SEQ_KD_MAX_NEW_TOKENS
from hero_agents.distill.examples import NOTE_PLACEMENTS
from hero_agents.environment import Environment, ReferenceSolutions
from hero_agents.errors import ConfigError, HeroError, ProbeError, TraceFormatError
from hero_agents.outputs import check_output_file, start_output_file
from hero_agents.probe import ProbeFigures, Prober, figures
from hero_agents.reflection.cache import default_cache_dir
from hero_agents.reflection.reference import reflector_label
from hero_agents.reflection.spec import SPEC_FORMS, ReflectorSpec, parse_reflector_spec
from hero_agents.storage import read_trajectories, write_json_atomic
from hero_agents.trajectory import Message, Trajectory

Reflectors = Annotated[
    list[str] | None,
    typer.Option(
        "--reflector",
        "-r",
        help=f"Reflect with this first (repeatable; 'self' is --policy). Forms:\n{SPEC_FORMS}",
    ),
]


def probe(
    traces: Annotated[
        list[Path],
        typer.Argument(
            help="Trajectories JSONL: diagnosed ones (one file per reflector, compared side by "
            "side), or one file of trajectories to reflect on with -r."
        ),
    ],
    reflector: Reflectors = None,
    policy: Annotated[
        str, typer.Option(help="The policy whose teacher is probed: 'default' or a model folder.")
    ] = "default",
    env: Annotated[
        str | None,
        typer.Option(help="Where reference actions come from (default: the trajectories' env)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="JSON figures (default: TRACES with .probe.json).")
    ] = None,
    placement: Annotated[
        str,
        typer.Option(
            help=f"Where the teacher reads the note: {', '.join(NOTE_PLACEMENTS)} (the hero "
            "methods' default: system-prompt)."
        ),
    ] = "system-prompt",
    note_template: Annotated[
        str, typer.Option(help="The note's text; {hint}, {cause}, {validity}, {necessity}.")
    ] = DEFAULT_HINDSIGHT_NOTE,
    teacher_actions: Annotated[
        bool, typer.Option(help="Also decode the teacher's greedy action under each note.")
    ] = True,
    max_new_tokens: Annotated[
        int,
        typer.Option(
            min=1,
            help="Token budget of a teacher action: give the rollouts' own, or a long call is "
            "cut off and counted as not a call (default: hero distill --seq-kd's).",
        ),
    ] = SEQ_KD_MAX_NEW_TOKENS,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "cpu",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out.")] = False,
) -> None:
    """Score every turn's action with and without its hint: which way do the hints push?"""
    target = out if out is not None else traces[0].with_suffix(".probe.json")
    try:
        if placement not in NOTE_PLACEMENTS:
            raise ConfigError(f"--placement {placement!r}: use {', '.join(NOTE_PLACEMENTS)}")
        check_output_file(target, mode="overwrite" if overwrite else "new", inputs=traces)
        specs = [parse_reflector_spec(text) for text in reflector or []]
        if specs and len(traces) > 1:
            raise ConfigError("with --reflector, give one trace file to reflect on")
        trajectories = []
        for path in traces:
            if not path.is_file():
                raise TraceFormatError(f"{path}: no such trace file")
            trajectories += read_trajectories(path)
        if not trajectories:
            raise ProbeError("the trace files hold no trajectory")
        environment = _environment(env, trajectories)
        folder = wiring.model_folder(policy)
        with phase_progress() as progress:
            diagnosed = (
                _reflect(specs, trajectories, environment, folder, device, progress)
                if specs
                else _as_given(trajectories)
            )
            results = _probe(diagnosed, folder, environment, locals(), progress)
        start_output_file(target, mode="overwrite")
        write_json_atomic(target, [asdict(result) for result in results])
    except HeroError as error:
        raise fail(error) from None
    stdout.print(_table(results, placement))
    for result in results:
        stdout.print(
            f"[bold]{escape(reflector_label(result.reflector))}[/]: {escape(result.verdict)}"
        )
    console.print(f"figures, turn by turn: {escape(str(target))}")


def _environment(name: str | None, trajectories: Sequence[Trajectory]) -> Environment | None:
    """The environment reference actions come from: `name`, else the trajectories' one when
    they all name the same environment that has references; None for production traces."""
    names = {t.env for t in trajectories}
    if name is None:
        if len(names) != 1 or None in names:
            return None
        name = str(names.pop())
    found = wiring.environment(name)
    return found if isinstance(found, ReferenceSolutions) else None


def _as_given(trajectories: list[Trajectory]) -> dict[str, list[Trajectory]]:
    """Diagnosed trajectories grouped by who diagnosed them (the same trajectory may come once
    per reflector, from several files)."""
    groups: dict[str, list[Trajectory]] = {}
    for trajectory in trajectories:
        if not trajectory.diagnoses:
            raise ProbeError(
                f"trajectory {trajectory.id!r} has no diagnoses: run hero reflect first, or pass "
                "--reflector SPEC"
            )
        groups.setdefault(trajectory.diagnoses[0].reflector, []).append(trajectory)
    return groups


def _reflect(
    specs: list[ReflectorSpec],
    trajectories: list[Trajectory],
    env: Environment | None,
    policy: Path,
    device: str,
    progress: Any,
) -> dict[str, list[Trajectory]]:
    """Each reflector's diagnoses of `trajectories`, kept to the ones every reflector
    diagnosed (so all are compared on the same turns)."""
    from hero_agents.adapters.reflectors import load_reflector

    groups: dict[str, dict[str, Trajectory]] = {}
    for spec in specs:
        named = _policy_for_self(spec, policy)
        advance = progress(f"reflect ({spec})", len(trajectories))
        options = {"cache_dir": default_cache_dir()} if _model_backed(named) else {}
        with load_reflector(
            named, env=env, device=device, demos=trajectories, **options
        ) as reflector:
            results = reflector.reflect(trajectories)
        for result in results:
            advance("" if result.ok else f"not diagnosed: {result.trajectory.id}")
        failed = [r for r in results if not r.ok]
        if failed:
            console.print(
                f"[yellow]{escape(str(spec))}[/] could not diagnose {len(failed)} of "
                f"{len(results)} trajectories (first: {escape(str(failed[0].error))}): "
                "they are left out of every reflector's figures"
            )
        groups[str(spec)] = {r.trajectory.id: r.trajectory for r in results if r.ok}
    common = set.intersection(*(set(group) for group in groups.values()))
    if not common:
        raise ProbeError("no trajectory was diagnosed by every reflector: nothing to compare")
    order = [t.id for t in trajectories if t.id in common]
    return {name: [group[i] for i in order] for name, group in groups.items()}


def _model_backed(spec: ReflectorSpec) -> bool:
    """A chat model writes (some of) its diagnoses: their replies are worth caching."""
    inner = spec.inner if spec.kind == "grounded" else spec
    return inner is not None and inner.model is not None


def _policy_for_self(spec: ReflectorSpec, policy: Path) -> ReflectorSpec:
    """`self` (also under ``grounded+``) is the probed policy itself."""
    if spec.kind == "self":
        return parse_reflector_spec(str(policy))
    if spec.kind == "grounded" and spec.inner is not None:
        return ReflectorSpec(kind="grounded", inner=_policy_for_self(spec.inner, policy))
    return spec


def _probe(
    groups: dict[str, list[Trajectory]],
    folder: Path,
    env: Environment | None,
    options: dict[str, Any],
    progress: Any,
) -> list[ProbeFigures]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hero_agents.device import resolve_device

    device = resolve_device(options["device"])
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).to(device).eval()
    prober = Prober(
        model,
        tokenizer,
        note_template=options["note_template"],
        note_placement=options["placement"],
        env=env,
        greedy=(
            _greedy(model, tokenizer, options["max_new_tokens"])
            if options["teacher_actions"]
            else None
        ),
        progress=progress,
    )
    return [figures(name, prober.probe(group, name)) for name, group in groups.items()]


def _greedy(model: Any, tokenizer: Any, max_new_tokens: int) -> Any:
    """The policy's greedy actions for token-id prompts, tool calls parsed as the in-process
    policy parses them."""
    from hero_agents.adapters.policy.tool_calls import parse_tool_calls
    from hero_agents.scoring import greedy_continuations

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def greedy(prompts: Sequence[list[int]]) -> list[Message]:
        output = greedy_continuations(
            model, prompts, pad_token_id=pad, max_new_tokens=max_new_tokens
        )
        actions = []
        for row in output:
            parsed = parse_tool_calls(tokenizer.decode(row, skip_special_tokens=True))
            actions.append(
                {
                    "role": "assistant",
                    "content": parsed.content,
                    "tool_calls": [
                        {
                            "type": "function",
                            "function": {
                                "name": call["name"],
                                "arguments": json.dumps(call["args"]),
                            },
                        }
                        for call in parsed.tool_calls
                    ],
                    "invalid_tool_calls": list(parsed.invalid_tool_calls),
                }
            )
        return actions

    return greedy


def _figure(value: float | None, kind: str = "shift") -> str:
    if value is None:
        return "–"
    if kind == "share":
        return f"{value:.0%}"
    if kind == "ratio":
        return f"x{value:.2f}"
    return f"{value:+.3f}"


def _table(results: list[ProbeFigures], placement: str) -> Table:
    """The reflectors side by side (rows are figures, so it fits 80 columns)."""
    table = Table(
        title=f"hero probe · note: {placement}",
        caption="shift = teacher − student log-prob per action token; prefers ref. = share of "
        "wrong turns where the note raises the reference more than the action taken; 1st "
        "token ratio = teacher/student probability of the action's first token (geometric "
        "mean); greedy = the teacher's own action under the note",
    )
    table.add_column("figure")
    for result in results:
        table.add_column(escape(reflector_label(result.reflector)), justify="right")
    rows: list[tuple[str, Any]] = [
        ("turns (empty hint)", lambda r: f"{r.turns} ({r.empty_hints})"),
        ("shift: taken", lambda r: _figure(r.taken_shift)),
        ("  proven bad", lambda r: _by_proof(r, "bad")),
        ("  = reference", lambda r: _by_proof(r, "good")),
        ("  unknown", lambda r: _by_proof(r, "unknown")),
        ("shift: reference", lambda r: _figure(r.reference_shift)),
        ("prefers ref.", lambda r: _prefers(r)),
        ("bad -> invalid", lambda r: _figure(r.proven_bad_labelled_invalid, "share")),
        ("ref. -> valid", lambda r: _figure(r.proven_good_labelled_valid, "share")),
        ("1st token ratio", lambda r: _figure(r.opening_ratio, "ratio")),
        ("shift: opening", lambda r: _figure(r.opening_shift)),
        ("shift: arguments", lambda r: _figure(r.arguments_shift)),
        ("greedy: a call", lambda r: _figure(r.teacher_call_ok, "share")),
        ("greedy: = ref.", lambda r: _figure(r.teacher_matches_reference, "share")),
    ]
    for name, cell in rows:
        table.add_row(name, *(cell(result) for result in results))
    return table


def _by_proof(result: ProbeFigures, proof: str) -> str:
    count = result.turns_by_proof.get(proof, 0)
    return f"{_figure(result.taken_shift_by_proof.get(proof))} ({count})" if count else "–"


def _prefers(result: ProbeFigures) -> str:
    if result.prefers_reference is None:
        return "–"
    return f"{result.prefers_reference:.0%} of {result.wrong_turns_with_reference}"
