"""`HeroConfig`: every knob of the HERO distillation trainer, TRL-style (a `TrainingArguments`).

The distillation fields reuse the names and meanings of TRL's `SDPOConfig` (``distillation_mode``,
``distillation_alpha``, ``distillation_topk``, ``distillation_add_tail``, ``distillation_is_clip``,
``teacher_model_kind``...), so the same TRL loss helpers and teacher machinery apply unchanged.
Everything `transformers.TrainingArguments` offers (accelerate, DeepSpeed, FSDP, precision,
logging, checkpoints) is inherited as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from trl.trainer.base_config import _BaseConfig

from hero_agents.distill.examples import NOTE_PLACEMENTS, SIGNALS, NotePlacement, Signal

DEFAULT_HINDSIGHT_NOTE = (
    "<hindsight_note>\n"
    "A reviewer read this whole episode afterwards and left this note for your next action:\n"
    "{hint}\n"
    "</hindsight_note>"
)
"""How a turn's diagnosis is shown to its teacher; ``{hint}``, ``{cause}``, ``{necessity}`` and
``{validity}`` are filled from the `Diagnosis`."""

SEQ_KD_MAX_NEW_TOKENS = 128
"""Token budget of a teacher's greedy action with seq_kd (and in ``hero probe``)."""


@dataclass
class HeroConfig(_BaseConfig):
    r"""
    Configuration of the [`HeroTrainer`].

    Parameters:
        > Training signal

        signal (`str`, defaults to `"hero"`):
            `hero`: per-turn self-distillation with LLM-written hindsight diagnoses as teacher
            context. `env-feedback`: the same with the raw next observation as teacher context
            (diagnoses written by the `env-feedback` reflector). `demo`: the same with a successful
            demonstration as teacher context (diagnoses written by the `demo` reflector). `grpo`:
            outcome reward only, clipped surrogate with advantages normalized within each task's
            group of rollouts. `hero+grpo`: `distillation_weight` * hero + (1 - weight) * grpo.

        > Distillation loss (as in TRL's SDPO)

        distillation_mode (`str`, defaults to `"sampled_token"`):
            `sampled_token`: reverse KL estimated on the sampled action tokens; `topk_logits`:
            divergence on the student's top-k support; `full_logits`: over the whole vocabulary.
        distillation_alpha (`float`, defaults to `1.0`):
            Generalized JSD interpolation: `0.0` forward KL, `1.0` reverse KL, in between a JSD.
            `sampled_token` requires `1.0`.
        distillation_topk (`int`, *optional*):
            Support size of `topk_logits`; required for it and rejected otherwise.
        distillation_add_tail (`bool`, defaults to `True`):
            With `topk_logits`, add one bucket holding the probability mass outside the top-k.
        distillation_is_clip (`float`, *optional*, defaults to `2.0`):
            Clip of the importance ratio student/behaviour on each token (turns whose behaviour
            log-probs were captured); `None` disables the correction.
        distillation_weight (`float`, defaults to `0.5`):
            Only in `hero+grpo`: weight of the distillation loss in the convex blend with GRPO.

        > GRPO

        epsilon (`float`, defaults to `0.2`):
            Lower clip of the probability ratio in the clipped surrogate.
        epsilon_high (`float`, *optional*):
            Upper clip; defaults to `epsilon`.
        scale_rewards (`str`, defaults to `"group"`):
            `group`: divide advantages by the reward standard deviation of their task's group;
            `none`: only subtract the group mean (Dr. GRPO).

        > Teacher

        teacher_model_kind (`str`, defaults to `"ema"`):
            `live`: the current student; `ema`: an exponential moving average of the student;
            `base`: the initial policy (with LoRA, the adapter disabled).
        teacher_update_rate (`float`, defaults to `0.05`):
            EMA update rate of the `ema` teacher.
        teacher_sync_steps (`int`, defaults to `1`):
            Optimizer steps between two EMA updates.
        hindsight_note_template (`str`):
            Text of the note inserted in the teacher's context.
        hindsight_note_placement (`str`, defaults to `"user-message"`):
            Where the teacher reads the note: `user-message` or `system-message` (an extra
            message after the turn's last observation, right before acting) or `system-prompt`
            (closing the conversation's system prompt).
        distill_action_opening (`bool`, defaults to `True`):
            Whether the tokens that open each action (a tool call's tag and tool name; a text
            action's first token) take part in the distillation loss. False leaves them to the
            student: a note that lowers the token opening a tool call then cannot teach the
            policy to stop calling tools.
        distill_positions (`str`, defaults to `"all"`):
            Which action tokens take part in the distillation loss: `all`, or `disagreement`:
            only those where the teacher's most likely next token differs from the student's
            (where the note changes the decision, not only how sure the policy is of it).
        seq_kd (`bool`, defaults to `False`):
            Sequence-level KD on the turns with a note (TRL GKD's `seq_kd`): score the
            teacher's own greedy action under the note instead of the action the policy
            sampled, so the student learns the corrected action rather than how the teacher
            would continue a wrong one. A turn whose teacher action does not end within
            `seq_kd_max_new_tokens` keeps its sampled action.
        seq_kd_max_new_tokens (`int`, defaults to `128`):
            Token budget of a teacher action with `seq_kd`.

        > Examples and efficiency

        distill_turns (`str`, defaults to `"all"`):
            `all`: every turn is trained. `flagged`: targeted distillation (as HinT-SD, arXiv
            2605.17873): only turns diagnosed `invalid` or `unnecessary`, plus a share
            `flagged_valid_share` of the others.
        flagged_valid_share (`float`, defaults to `0.0`):
            With `flagged`: probability that a valid, necessary turn is trained too.
        pack_turns (`bool`, defaults to `True`):
            Score all turns of an append-only trajectory in one student forward pass.
        on_token_drift (`str`, defaults to `"warn"`):
            What to do when captured tokens differ from the chat template's tokenization:
            `warn` (log and train on the captured tokens) or `error`.

        > Model

        use_peft (`bool`, defaults to `True`):
            Train a LoRA adapter (else full fine-tuning).
        lora_r, lora_alpha, lora_dropout, lora_target_modules:
            LoRA rank, scaling, dropout and target modules.
        model_init_kwargs (`dict`, *optional*):
            Keyword arguments of `from_pretrained` when the model is given as a path.
        trust_remote_code (`bool`, defaults to `False`):
            Allow model code shipped with a checkpoint.
        disable_dropout (`bool`, defaults to `True`):
            Disable dropout so that student and teacher log-probs are deterministic.
    """

    # ---- overridden TrainingArguments defaults
    learning_rate: float = field(
        default=1e-4,
        metadata={"help": "Initial AdamW learning rate (1e-4 suits LoRA; use ~1e-6 to 1e-5 full)."},
    )
    per_device_train_batch_size: int = field(
        default=1,
        metadata={
            "help": "Trajectories per device per micro-step (all of their turns are trained); "
            "raise gradient_accumulation_steps for larger batches."
        },
    )
    num_train_epochs: float = field(default=1.0, metadata={"help": "Passes over the trajectories."})
    logging_steps: float = field(
        default=1,
        metadata={"help": "Log every X optimizer steps (a float below 1 is a ratio of all steps)."},
    )
    remove_unused_columns: bool = field(
        default=False,
        metadata={"help": "Must stay False: the trainer's rows are trajectories, not columns."},
    )

    # ---- training signal
    signal: Signal = field(
        default="hero",
        metadata={
            "help": "Training signal: 'hero' (LLM hindsight diagnoses as teacher context), "
            "'env-feedback' (raw next observation as teacher context), 'demo' (successful "
            "demonstration as teacher context), 'grpo' (outcome reward, group-normalized "
            "advantages, clipped surrogate) or 'hero+grpo' (weighted blend)."
        },
    )

    # ---- distillation loss
    distillation_mode: Literal["sampled_token", "topk_logits", "full_logits"] = field(
        default="sampled_token",
        metadata={
            "help": "'sampled_token': reverse KL on the sampled action tokens; 'topk_logits': "
            "divergence on the student's top-k support; 'full_logits': full-vocabulary divergence."
        },
    )
    distillation_alpha: float = field(
        default=1.0,
        metadata={
            "help": "Generalized JSD interpolation: 0 forward KL, 1 reverse KL, else JSD. "
            "'sampled_token' requires 1."
        },
    )
    distillation_topk: int | None = field(
        default=None,
        metadata={"help": "Top-k support size; required by 'topk_logits', rejected otherwise."},
    )
    distillation_add_tail: bool = field(
        default=True,
        metadata={"help": "With 'topk_logits', add a bucket for the mass outside the top-k."},
    )
    distillation_is_clip: float | None = field(
        default=2.0,
        metadata={
            "help": "Clip of the per-token importance ratio student/behaviour, applied on turns "
            "whose behaviour log-probs were captured. None disables it."
        },
    )
    distillation_weight: float = field(
        default=0.5,
        metadata={
            "help": "Only in 'hero+grpo': loss = w * distillation + (1 - w) * grpo, w in [0, 1]."
        },
    )

    # ---- grpo
    epsilon: float = field(
        default=0.2, metadata={"help": "Lower clip of the ratio in GRPO's clipped surrogate."}
    )
    epsilon_high: float | None = field(
        default=None, metadata={"help": "Upper clip of the ratio; defaults to `epsilon`."}
    )
    scale_rewards: Literal["group", "none"] = field(
        default="group",
        metadata={
            "help": "'group': advantages divided by the reward std of their task's group; "
            "'none': only the group mean is subtracted (Dr. GRPO)."
        },
    )

    # ---- teacher
    teacher_model_kind: Literal["live", "ema", "base"] = field(
        default="ema",
        metadata={
            "help": "'live': the current student; 'ema': an exponential moving average of the "
            "student; 'base': the initial policy (the LoRA adapter disabled)."
        },
    )
    teacher_update_rate: float = field(
        default=0.05, metadata={"help": "EMA update rate of the 'ema' teacher."}
    )
    teacher_sync_steps: int = field(
        default=1, metadata={"help": "Optimizer steps between two EMA teacher updates."}
    )
    hindsight_note_template: str = field(
        default=DEFAULT_HINDSIGHT_NOTE,
        metadata={
            "help": "Text of the note the teacher reads before acting; {hint}, {cause}, "
            "{necessity} and {validity} are filled from the turn's diagnosis."
        },
    )
    hindsight_note_placement: NotePlacement = field(
        default="user-message",
        metadata={
            "help": "Where the teacher reads the note: 'user-message' or 'system-message' (an "
            "extra message right before acting) or 'system-prompt' (closing the system prompt)."
        },
    )
    distill_action_opening: bool = field(
        default=True,
        metadata={
            "help": "Whether the tokens that open each action (a tool call's tag and name, a "
            "text action's first token) take part in the distillation loss."
        },
    )
    distill_positions: Literal["all", "disagreement"] = field(
        default="all",
        metadata={
            "help": "'all' action tokens, or only those where the teacher's most likely next "
            "token differs from the student's ('disagreement')."
        },
    )
    seq_kd: bool = field(
        default=False,
        metadata={
            "help": "On turns with a note, score the teacher's greedy action under the note "
            "instead of the sampled one (sequence-level KD, as TRL GKD's seq_kd)."
        },
    )
    seq_kd_max_new_tokens: int = field(
        default=SEQ_KD_MAX_NEW_TOKENS,
        metadata={"help": "Token budget of a teacher action with seq_kd."},
    )

    # ---- examples and efficiency
    distill_turns: Literal["all", "flagged"] = field(
        default="all",
        metadata={
            "help": "'all': train every turn; 'flagged': only turns diagnosed invalid or "
            "unnecessary, plus a share `flagged_valid_share` of the others (targeted "
            "distillation, as HinT-SD)."
        },
    )
    flagged_valid_share: float = field(
        default=0.0,
        metadata={"help": "With distill_turns='flagged': share of the other turns also trained."},
    )
    pack_turns: bool = field(
        default=True,
        metadata={
            "help": "Score every turn of an append-only trajectory in one student forward pass "
            "over the whole conversation; non-append histories fall back to one pass per turn."
        },
    )
    on_token_drift: Literal["warn", "error"] = field(
        default="warn",
        metadata={
            "help": "When captured token ids differ from the chat template's tokenization: "
            "'warn' (log it, train on the captured tokens) or 'error'."
        },
    )

    # ---- model
    use_peft: bool = field(
        default=True, metadata={"help": "Train a LoRA adapter; False means full fine-tuning."}
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator (alpha / r)."})
    lora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the LoRA branch."})
    lora_target_modules: list[str] | None = field(
        default=None,
        metadata={"help": "Modules to adapt; None means every linear layer ('all-linear')."},
    )
    model_init_kwargs: dict[str, Any] | None = field(
        default=None,
        metadata={"help": "Keyword arguments of `from_pretrained` when the model is a path."},
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow model code shipped with the checkpoint."}
    )
    disable_dropout: bool = field(
        default=True,
        metadata={"help": "Disable dropout so student and teacher log-probs are deterministic."},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        choices = {
            "signal": SIGNALS,
            "distillation_mode": ("sampled_token", "topk_logits", "full_logits"),
            "teacher_model_kind": ("live", "ema", "base"),
            "scale_rewards": ("group", "none"),
            "hindsight_note_placement": NOTE_PLACEMENTS,
            "on_token_drift": ("warn", "error"),
            "distill_turns": ("all", "flagged"),
            "distill_positions": ("all", "disagreement"),
        }
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                raise ValueError(
                    f"{name} must be one of {', '.join(valid)}; got {getattr(self, name)!r}"
                )
        if self.distillation_mode == "sampled_token" and self.distillation_alpha != 1.0:
            raise ValueError(
                "distillation_mode='sampled_token' is a reverse KL: it requires "
                f"distillation_alpha=1.0, got {self.distillation_alpha}"
            )
        if not 0.0 <= self.distillation_alpha <= 1.0:
            raise ValueError(f"distillation_alpha must be in [0, 1], got {self.distillation_alpha}")
        if (self.distillation_mode == "topk_logits") != (self.distillation_topk is not None):
            raise ValueError(
                "distillation_topk must be set with distillation_mode='topk_logits' and only then"
            )
        if not 0.0 <= self.distillation_weight <= 1.0:
            raise ValueError(
                f"distillation_weight must be in [0, 1], got {self.distillation_weight}"
            )
        if not 0.0 <= self.flagged_valid_share <= 1.0:
            raise ValueError(
                f"flagged_valid_share must be in [0, 1], got {self.flagged_valid_share}"
            )
        if self.distill_turns == "flagged" and self.signal == "grpo":
            raise ValueError("distill_turns='flagged' selects turns by diagnosis: not with grpo")
        if self.seq_kd and self.uses_grpo:
            raise ValueError(
                f"seq_kd replaces sampled actions, which the GRPO term needs: not with signal "
                f"{self.signal!r}"
            )
        if self.seq_kd_max_new_tokens < 1:
            raise ValueError(
                f"seq_kd_max_new_tokens must be positive, got {self.seq_kd_max_new_tokens}"
            )
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(
                f"max_steps must be positive, or -1 to train num_train_epochs, got {self.max_steps}"
            )
        if self.max_steps <= 0 and self.num_train_epochs <= 0:
            raise ValueError(
                f"num_train_epochs must be positive (or max_steps set), got {self.num_train_epochs}"
            )
        if self.remove_unused_columns:
            raise ValueError("remove_unused_columns must be False: rows are trajectories")
        if self.epsilon_high is None:
            self.epsilon_high = self.epsilon

    @property
    def uses_distillation(self) -> bool:
        """Whether this signal has a self-teacher (every signal but pure `grpo`)."""
        return self.signal != "grpo"

    @property
    def uses_grpo(self) -> bool:
        """Whether this signal has an outcome-reward term."""
        return self.signal in ("grpo", "hero+grpo")
