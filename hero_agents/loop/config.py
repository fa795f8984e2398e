"""The training loop's configuration: one YAML file, validated before any work starts.

Every section and key is checked (an unknown key is an error that names it), paths must exist,
and budgets must be possible, so a run never fails an hour in on a typo. `TrainConfig` is what
``hero train CONFIG.yaml`` reads; `CompareConfig` adds the arms and seeds of ``hero compare``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    field_validator,
    model_validator,
)

from hero_agents.errors import ConfigError
from hero_agents.methods import METHOD_NAMES, METHODS, parse_arm
from hero_agents.reflection.spec import ReflectorSpec, parse_reflector_spec


def _run_reflector(value: Any) -> ReflectorSpec:
    """A run's reflector: a `ReflectorSpec`, parsed once from its text."""
    if isinstance(value, ReflectorSpec):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a reflector spec, got {type(value).__name__}")
    try:
        spec = parse_reflector_spec(value)
    except ConfigError as error:  # its message lists the valid forms
        raise ValueError(str(error)) from None
    if spec.kind in ("env-feedback", "demo"):
        raise ValueError(
            f"{value!r} is a baseline's feedback, not a reflector: set method: {spec.kind}"
        )
    return spec


RunReflector = Annotated[
    ReflectorSpec, PlainValidator(_run_reflector), PlainSerializer(str, return_type=str)
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WarmupSettings(_Section):
    """The supervised warm start on train-split demonstrations (see `hero_agents.loop.warmup`)."""

    steps: int = Field(default=16, ge=0, description="SFT optimizer steps; 0 skips the warm start.")
    learning_rate: float = Field(default=5e-5, gt=0)
    batch_size: int = Field(default=1, ge=1, description="Demonstrations per SFT step.")
    demonstrations: int | None = Field(
        default=None, ge=1, description="Train tasks to draw demonstrations from (None: all)."
    )
    seed: int = 0
    model: Path | None = Field(
        default=None, description="Use this warm-started model folder instead of training one."
    )


class RolloutSettings(_Section):
    """Training rollouts: a group of `group_size` episodes for each of `tasks` train tasks."""

    tasks: int = Field(default=4, ge=1, description="Train tasks per iteration.")
    group_size: int = Field(default=4, ge=1, description="Episodes per task (GRPO's group).")
    max_turns: int = Field(default=6, ge=1, description="Policy calls per episode.")
    max_new_tokens: int = Field(default=96, ge=1, description="Token budget of one action.")
    temperature: float = Field(
        default=0.7,
        ge=0.0,
        description="Sampling temperature of training rollouts (the same for every arm of a "
        "comparison). 0.7 was measured on train tasks: the warm-started 135M policy succeeds "
        "more often than at 1 and distillation on its rollouts drifts less (README, Results).",
    )
    top_p: float = Field(
        default=1.0, gt=0.0, le=1.0, description="Nucleus sampling of training rollouts."
    )
    concurrency: int = Field(default=8, ge=1, description="Episodes in flight at once.")


class TrainSettings(_Section):
    """Distillation (or GRPO) on each iteration's rollouts, with a LoRA adapter."""

    learning_rate: float = Field(
        default=1e-4, gt=0, description="Peak learning rate of the run's one schedule."
    )
    schedule: Literal["constant", "cosine"] = Field(
        default="constant",
        description="The learning rate over the run's global optimizer steps (one AdamW and "
        "one schedule for the whole run, carried across iterations and resumes): constant, or "
        "a cosine decay to a tenth of the peak at the last planned step; both after warmup.",
    )
    warmup_steps: int = Field(default=0, ge=0, description="Linear warm-up steps of the run.")
    epochs: float = Field(
        default=1.0,
        gt=0,
        description="Passes over an iteration's data (when steps_per_iteration is not set).",
    )
    steps_per_iteration: int | None = Field(
        default=None,
        ge=1,
        description="Optimizer steps of each iteration, cycling through its data as often as "
        "needed (several passes over a batch, as PPO does). None: epochs x the steps one pass "
        "over rollout.tasks x rollout.group_size trajectories takes.",
    )
    batch_size: int = Field(
        default=4, ge=1, description="Trajectories per optimizer step (gradient accumulation)."
    )
    loss: Literal["sampled_token", "topk_logits", "full_logits"] = Field(
        default="full_logits",
        description="The distillation loss (full_logits and topk_logits: the generalized JSD "
        "at alpha 0.5). Chosen on train tasks with benchmarks/choose_distillation.py: of those "
        "measured, it lowered the train reference log-likelihood least (README, Results).",
    )
    teacher: Literal["live", "base"] = Field(
        default="base",
        description="'base': the warm-started policy reads the note, an anchor against drift "
        "(the measured default); 'live': the current policy does. (TRL's EMA teacher restarts "
        "with each iteration's trainer, so the loop offers none.)",
    )
    distill_action_opening: bool = Field(
        default=False,
        description="Distill the tokens that open each action (a tool call's tag and name). "
        "Off by default: a note can lower them and teach the policy to stop calling tools.",
    )
    seq_kd: bool = Field(
        default=True,
        description="On turns with a note, distill on the teacher's own greedy action under "
        "the note rather than the sampled one (HeroConfig.seq_kd; never with a GRPO term). "
        "Chosen on train tasks with benchmarks/choose_distillation.py: on two sets of 32 "
        "rollouts it raised the train reference log-likelihood where the sampled actions "
        "raised it less or lowered it (README, Results).",
    )
    note_placement: Literal["user-message", "system-message", "system-prompt"] | None = Field(
        default=None,
        description="Where the teacher reads its note (None: the method's default, measured "
        "with hero probe: the end of the system prompt for diagnoses, a user message right "
        "before acting for env-feedback and demo).",
    )
    lora_r: int = Field(default=16, ge=1)
    targeted_valid_share: float = Field(
        default=0.25,
        ge=0.0,
        le=1.0,
        description="hero-targeted: share of turns diagnosed valid and necessary that are "
        "distilled besides every invalid or unnecessary one.",
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="Further HeroConfig fields, passed as they are."
    )


class EvalSettings(_Section):
    """Evaluation on held-out (test-split) tasks, before training and every `every` iterations."""

    every: int = Field(default=1, ge=1, description="Evaluate after every N-th iteration.")
    split: str = Field(
        default="test",
        description="The held-out split: 'test' (new argument values of the train templates) "
        "or, on tau2:mock, 'test-templates' (kinds of task never seen in training).",
    )
    tasks: int | None = Field(default=None, ge=1, description="Held-out tasks (None: all).")
    samples: int = Field(default=1, ge=1, description="Episodes per task (pass^k needs k).")
    temperature: float = Field(default=0.0, ge=0.0, description="0 is greedy decoding.")
    max_turns: int = Field(default=6, ge=1)
    sampled: int = Field(
        default=0,
        ge=0,
        description="Also k episodes per task at sampled_temperature beside the main pass "
        "(pass^k, as tau2 reports it); 0: none.",
    )
    sampled_temperature: float = Field(default=1.0, gt=0.0)
    reference_logprob: bool = Field(
        default=True,
        description="Also score the held-out tasks' reference actions (mean log-prob per "
        "token): a low-variance learning curve (where the environment has references).",
    )


class GuardSettings(_Section):
    """A drift guard: after each iteration, the reference actions of a few *train* tasks are
    scored (mean log-prob per token); a fall past `max_drop` below the warm start's stops the
    run (or only warns), before the policy forgets what it could do."""

    tasks: int = Field(
        default=8, ge=0, description="Train tasks whose reference actions are scored (0: off)."
    )
    max_drop: float = Field(
        default=0.5, gt=0.0, description="Nats per token below the warm start's that trip it."
    )
    action: Literal["stop", "warn"] = "stop"


class BudgetSettings(_Section):
    """When the run stops: after `iterations`, or once `rollout_turns` have been spent."""

    iterations: int = Field(default=3, ge=1)
    rollout_turns: int | None = Field(
        default=None,
        ge=1,
        description="Stop before an iteration once training rollouts have taken this many "
        "policy turns (the same budget for every method of a comparison).",
    )


class TrainConfig(_Section):
    """Everything ``hero train`` needs; every field has a default but the file's own."""

    env: str = "tau2:mock"
    model: str = Field(default="default", description="'default' (SmolLM2-135M) or a folder.")
    device: str = Field(
        default="auto",
        description="Where the in-process policy, the self reflector, the warm start and the "
        "trainer run: auto (a CUDA GPU when torch sees one, else the CPU), cpu, cuda or cuda:N.",
    )
    backend: Literal["in-process", "vllm"] = Field(
        default="in-process",
        description="Where the policy samples: in this process (CPU default) or on a local "
        "vLLM server that hot-loads each new adapter (GPU).",
    )
    method: str = Field(
        default="hero",
        description=f"What each iteration trains on: one of {', '.join(METHOD_NAMES)} "
        "(see hero_agents.methods).",
    )
    reflector: RunReflector = Field(
        default=parse_reflector_spec("self"),
        description="Who writes the diagnoses of the methods that take the run's reflector: "
        "'self' (the policy being trained, with its current weights), a chat model spec such "
        "as openai:gpt-4o-mini, 'grounded' (what the trace proves), 'grounded+SPEC', or "
        "'reference' (the benchmark's answers: privileged).",
    )
    seed: int = 0
    warmup: WarmupSettings = WarmupSettings()
    rollout: RolloutSettings = RolloutSettings()
    train: TrainSettings = TrainSettings()
    eval: EvalSettings = EvalSettings()
    budget: BudgetSettings = BudgetSettings()
    guard: GuardSettings = GuardSettings()
    report_to: list[Literal["tensorboard", "wandb"]] = Field(
        default_factory=list, description="Where metrics go besides metrics.jsonl."
    )
    vllm_max_model_len: int = Field(default=4096, ge=256)

    @field_validator("device")
    @classmethod
    def _device_form(cls, spec: str) -> str:
        text = spec.strip().lower()
        kind, _, index = text.partition(":")
        if text not in ("auto", "cpu", "cuda") and not (kind == "cuda" and index.isdigit()):
            raise ValueError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N")
        return text

    @field_validator("method")
    @classmethod
    def _known_method(cls, name: str) -> str:
        if name not in METHODS:
            raise ValueError(f"unknown method {name!r}; valid: {', '.join(METHOD_NAMES)}")
        return name

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.model != "default" and not (Path(self.model) / "config.json").is_file():
            raise ValueError(f"model: {self.model!r} is neither 'default' nor a model folder")
        model = self.warmup.model
        if model is not None and not (model / "config.json").is_file():
            raise ValueError(f"warmup.model: {str(model)!r} is not a model folder")
        if METHODS[self.method].needs_group_contrast and self.rollout.group_size < 2:
            raise ValueError(
                f"method {self.method!r} needs rollout.group_size >= 2: GRPO's advantages compare "
                "the rollouts of one task"
            )
        budget = self.budget.rollout_turns
        if budget is not None and budget < self.rollout.tasks * self.rollout.group_size:
            raise ValueError(
                f"budget.rollout_turns={budget} is less than one iteration's rollouts "
                f"({self.rollout.tasks} tasks x {self.rollout.group_size} episodes, each at "
                "least one turn): no iteration could run"
            )
        return self

    @property
    def planned_steps_per_iteration(self) -> int:
        """Optimizer steps one iteration takes: ``train.steps_per_iteration``, else epochs x
        the steps of one pass over a full iteration's rollouts."""
        train = self.train
        if train.steps_per_iteration is not None:
            return train.steps_per_iteration
        trajectories = self.rollout.tasks * self.rollout.group_size
        return math.ceil(math.ceil(trajectories / train.batch_size) * train.epochs)


class CompareConfig(_Section):
    """``hero compare``: the same training config run for several arms and seeds.

    An arm is a method, or a method that takes the run's reflector with that reflector named:
    ``hero[grounded+self]`` (`hero_agents.methods.parse_arm`); ``hero`` alone uses
    ``train.reflector``.
    """

    train: TrainConfig = TrainConfig()
    methods: list[str] = Field(
        default_factory=lambda: ["hero", "hero-targeted", "env-feedback", "demo", "grpo"],
        min_length=1,
        description="The arms: METHOD or METHOD[REFLECTOR], e.g. grpo, hero[grounded+self].",
    )
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)

    @field_validator("methods")
    @classmethod
    def _arms(cls, arms: list[str]) -> list[str]:
        for arm in arms:
            try:
                parse_arm(arm)
            except ConfigError as error:
                raise ValueError(str(error)) from None
        return arms

    @model_validator(mode="after")
    def _distinct(self) -> CompareConfig:
        for name, values in (("methods", self.methods), ("seeds", self.seeds)):
            if len(set(values)) != len(values):
                raise ValueError(f"{name} lists the same entry twice: {values}")
        for arm in self.methods:
            self.run_config(arm, self.seeds[0])  # every arm's config must be valid
        return self

    def run_config(self, arm: str, seed: int) -> TrainConfig:
        """The training config of one arm and seed (validated)."""
        row, reflector = parse_arm(arm)
        data = self.train.model_dump(mode="json") | {"method": row.name, "seed": seed}
        if reflector is not None:
            data["reflector"] = reflector
        try:
            return TrainConfig.model_validate(data)
        except ValidationError as error:
            raise ValueError(_error_message(f"arm {arm!r}", error)) from None


def arm_folder(arm: str) -> str:
    """A folder name for an arm (``hero[openai:gpt-4o]`` -> ``hero[openai-gpt-4o]``)."""
    return re.sub(r"[^A-Za-z0-9_.+\[\]-]", "-", arm)


def _error_message(source: str, error: ValidationError) -> str:
    lines = [f"{source}: invalid configuration"]
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data


def _resolve_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """Relative model paths in a config file are relative to the file."""
    data = dict(data)
    model = data.get("model")
    if isinstance(model, str) and model != "default" and not Path(model).is_absolute():
        data["model"] = str(base / model)
    warmup = data.get("warmup")
    if isinstance(warmup, dict) and isinstance(warmup.get("model"), str):
        if not Path(warmup["model"]).is_absolute():
            data["warmup"] = {**warmup, "model": str(base / warmup["model"])}
    return data


def parse_train_config(data: dict[str, Any], *, source: str = "config") -> TrainConfig:
    """A `TrainConfig` from a mapping; errors name every bad key."""
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_error_message(source, error)) from None


def load_train_config(path: Path) -> TrainConfig:
    """Read and validate ``hero train``'s YAML file."""
    return parse_train_config(_resolve_paths(_read_yaml(path), path.parent), source=str(path))


def load_compare_config(path: Path) -> CompareConfig:
    """Read and validate ``hero compare``'s YAML file (its ``train`` section is a TrainConfig)."""
    data = _read_yaml(path)
    if isinstance(data.get("train"), dict):
        data["train"] = _resolve_paths(data["train"], path.parent)
    try:
        return CompareConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_error_message(str(path), error)) from None


def dump_config(config: BaseModel, path: Path) -> None:
    """Write `config` as YAML (every field, defaults included)."""
    path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
