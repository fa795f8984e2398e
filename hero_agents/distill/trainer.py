"""`HeroTrainer`: per-turn self-distillation (and its baselines) on recorded tool conversations.

It orchestrates; the math is in `loss_utils`, the tokenization in `examples`, the knobs in
`config`. One training step, top to bottom (`compute_loss`):

1. the batch is a few trajectories (one per device by default); every turn of each is trained;
2. student: the logits that predict action tokens, from one pass per row, a row being a whole
   append-only conversation when `pack_turns` (else one turn);
3. teacher: the same for one row per turn (context + hindsight note + the same action), without
   gradient, through TRL's teacher routing (live / EMA adapter / base with the adapter disabled);
4. loss on action tokens only: TRL's self-distillation divergence, and/or GRPO's clipped
   surrogate with group-normalized advantages, blended by `distillation_weight` in ``hero+grpo``.

Under DDP, FSDP or DeepSpeed (`accelerate launch`), the rows of a step go through exactly one
student forward and one teacher forward, left-padded, as those engines require; in a single
process each row gets its own unpadded forward, which on CPU is faster and far lighter.
Everything else (optimizer, schedule, accumulation, checkpoints, logging, devices) is
`transformers.Trainer` through TRL's `_BaseTrainer`.
"""

from __future__ import annotations

import logging
import textwrap
import warnings
from collections import defaultdict
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any, ClassVar

import torch
from accelerate.utils import is_peft_model, set_seed
from peft import LoraConfig, PeftConfig
from transformers import AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback
from trl.trainer.base_trainer import _BaseTrainer
from trl.trainer.utils import (
    create_model_from_path,
    disable_dropout_in_model,
    get_config_model_id,
    identity,
    selective_log_softmax,
)

from hero_agents.distill.config import HeroConfig
from hero_agents.distill.examples import (
    ScoringSequence,
    TrajectoryExample,
    build_examples,
    student_sequences,
    teacher_sequences,
)
from hero_agents.distill.loss_utils import (
    clipped_surrogate_loss,
    distillation_loss,
    group_advantages,
)
from hero_agents.distill.sequence_kd import use_teacher_actions
from hero_agents.errors import DistillationError
from hero_agents.scoring import supports_logits_to_keep
from hero_agents.trajectory import Trajectory

with warnings.catch_warnings():  # TRL flags trl.experimental as unstable; we pin trl<1.17
    warnings.filterwarnings("ignore", message=".*trl.experimental.*")
    from trl.experimental.sdpo import SDPOTrainer
    from trl.experimental.utils import prepare_peft_model

logger = logging.getLogger(__name__)


def action_logits(
    model: torch.nn.Module,
    rows: Sequence[ScoringSequence],
    *,
    pad_token_id: int,
    one_forward: bool = False,
    supports_logits_to_keep: bool = True,
) -> torch.Tensor:
    """Logits that predict every scored action token of `rows`, in row/span order: ``(N, V)``.

    Only the needed positions are projected to the vocabulary (``logits_to_keep`` given as their
    indices), so a packed conversation never materializes logits for its prompt, tool-result or
    note tokens.

    With `one_forward`, all rows go through a single forward pass, left-padded with matching
    position ids (DDP, FSDP and DeepSpeed expect one forward per step on every rank). Otherwise
    each row has its own unpadded forward: exact, and on CPU much lighter, since a padding mask
    sends attention down the quadratic-memory path.
    """
    if not one_forward and len(rows) > 1:
        options = {"supports_logits_to_keep": supports_logits_to_keep}
        return torch.cat(
            [action_logits(model, [row], pad_token_id=pad_token_id, **options) for row in rows]
        )
    device = next(model.parameters()).device
    length = max(len(row.input_ids) for row in rows)
    offsets = [length - len(row.input_ids) for row in rows]  # left padding of each row
    input_ids = torch.full((len(rows), length), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
    for b, (row, offset) in enumerate(zip(rows, offsets, strict=True)):
        input_ids[b, offset:] = torch.tensor(row.input_ids)
        attention_mask[b, offset:] = 1
    inputs: dict[str, Any] = {"input_ids": input_ids.to(device), "use_cache": False}  # (B, L)
    if any(offsets):
        inputs["attention_mask"] = attention_mask.to(device)
        inputs["position_ids"] = (attention_mask.cumsum(-1) - 1).clamp(min=0).to(device)

    positions = [
        [p + o for p in row.logit_positions()] for row, o in zip(rows, offsets, strict=True)
    ]
    kept = sorted({p for row_positions in positions for p in row_positions})
    column = {p: k for k, p in enumerate(kept)} if supports_logits_to_keep else {p: p for p in kept}
    if supports_logits_to_keep:
        inputs["logits_to_keep"] = torch.tensor(kept, dtype=torch.long, device=device)
    logits = model(**inputs).logits  # (B, K, V): the K kept positions (or all L)
    return torch.cat(
        [
            logits[b, torch.tensor([column[p] for p in row_positions], device=device)]
            for b, row_positions in enumerate(positions)
        ]
    )  # (N, V)


class HeroTrainer(_BaseTrainer):
    """Trainer for HERO: hindsight-enhanced self-distillation for multi-turn agents.

    For each turn of each trajectory, the student is the policy on the exact context it saw and
    the teacher is the same policy with that turn's hindsight diagnosis added; the student is
    pulled toward the teacher on its own sampled action tokens. The same trainer runs the
    baselines (`env-feedback`, `demo`, `grpo`) and the blend `hero+grpo` on the same budget.
    """

    config_cls = HeroConfig
    loss_is_scaled_for_ga = True
    _tag_names: ClassVar[list[str]] = ["trl", "hero", "self-distillation"]
    _name = "HERO"
    # docstyle-ignore
    _paper: ClassVar[dict[str, str]] = {
        "title": "Hindsight-Enhanced Self-Distillation for Multi-Turn Agents",
        "id": "2606.11559",
        "citation": textwrap.dedent("""\
            @article{liu2026hero,
                title        = {{HERO: Hindsight-Enhanced Self-Distillation for Multi-Turn Agents}},
                author       = {Liu and Zhang and Li and Lyu and Shang},
                year         = 2026,
                eprint       = {arXiv:2606.11559}
            }"""),
    }

    # TRL's SDPO teacher machinery, reused as is (HeroConfig keeps SDPOConfig's field names):
    # live = the student; base = adapter disabled (or a frozen copy); ema = an EMA "teacher" LoRA
    # adapter (PEFTAdapterEMACallback) or an EMA copy (SyncTeacherModelCallback).
    _setup_teacher_model = SDPOTrainer._setup_teacher_model
    _use_peft_ema_teacher_adapter = SDPOTrainer._use_peft_ema_teacher_adapter
    _get_teacher_context_for_self_distillation = (
        SDPOTrainer._get_teacher_context_for_self_distillation
    )

    def __init__(
        self,
        model: str | Path | PreTrainedModel,
        args: HeroConfig,
        train_dataset: Sequence[Trajectory],
        eval_dataset: Sequence[Trajectory] | None = None,
        processing_class: PreTrainedTokenizerBase | None = None,
        peft_config: PeftConfig | None = None,
        callbacks: list[TrainerCallback] | None = None,
        optimizers: tuple[Any, Any] = (None, None),
    ) -> None:
        set_seed(args.seed)  # before PEFT initializes its adapter
        if isinstance(model, str | Path):
            init_kwargs = dict(args.model_init_kwargs or {})
            init_kwargs.setdefault("trust_remote_code", args.trust_remote_code)
            if args.distributed_state.distributed_type in ("MULTI_GPU", "DEEPSPEED"):
                init_kwargs["device_map"] = None
            model = create_model_from_path(str(model), **init_kwargs)
        if processing_class is None:
            processing_class = AutoTokenizer.from_pretrained(
                get_config_model_id(model.config), trust_remote_code=args.trust_remote_code
            )
        if args.use_peft and peft_config is None and not is_peft_model(model):
            peft_config = LoraConfig(
                r=args.lora_r,
                lora_alpha=args.lora_alpha,
                lora_dropout=args.lora_dropout,
                target_modules=args.lora_target_modules or "all-linear",
                task_type="CAUSAL_LM",
            )
        if peft_config is not None or is_peft_model(model):
            model = prepare_peft_model(model, peft_config, args)
        if args.disable_dropout:
            disable_dropout_in_model(model)
        if processing_class.pad_token_id is None:
            raise DistillationError("the tokenizer has no pad token; set one before training")

        examples = self._examples(train_dataset, processing_class, args)
        eval_examples = None
        if eval_dataset is not None:
            eval_examples = self._examples(eval_dataset, processing_class, args)

        super().__init__(
            model=model,
            args=args,
            data_collator=identity,  # rows are TrajectoryExamples; tensors are built per step
            train_dataset=examples,
            eval_dataset=eval_examples,
            processing_class=processing_class,
            callbacks=callbacks,
            optimizers=optimizers,
        )
        self._supports_logits_to_keep = supports_logits_to_keep(model)
        # A wrapped model (DDP, FSDP, DeepSpeed) expects the same forwards on every rank, and one
        # forward with grad per backward: then every step is one student and one teacher forward.
        self._one_forward = self.accelerator.num_processes > 1 or self.is_deepspeed_enabled
        self._metrics: dict[str, dict[str, list[float]]] = {
            "train": defaultdict(list),
            "eval": defaultdict(list),
        }
        self.teacher_model = None
        if args.uses_distillation:
            self._setup_teacher_model()
        if args.seq_kd:  # the teacher's own actions, once, before training
            # Before the first step the live and EMA teachers are the policy itself.
            base = args.teacher_model_kind == "base"
            teacher = self.accelerator.unwrap_model(self.teacher_model if base else self.model)
            with self._get_teacher_context_for_self_distillation() if base else nullcontext():
                replaced = use_teacher_actions(
                    teacher, examples, processing_class, max_new_tokens=args.seq_kd_max_new_tokens
                )
            logger.info("seq_kd: %d turn(s) scored on the teacher's own action", replaced)

    @staticmethod
    def _examples(
        trajectories: Sequence[Trajectory], tokenizer: PreTrainedTokenizerBase, args: HeroConfig
    ) -> list[TrajectoryExample]:
        examples = build_examples(
            list(trajectories),
            tokenizer,
            signal=args.signal,
            note_template=args.hindsight_note_template,
            note_placement=args.hindsight_note_placement,
            on_drift=args.on_token_drift,
            turns=args.distill_turns,
            valid_share=args.flagged_valid_share,
            seed=args.seed,
        )
        if args.uses_grpo:
            groups = [e.task_id or e.trajectory_id for e in examples]
            rewards = [float(e.reward) for e in examples]  # type: ignore[arg-type]  (checked)
            advantages = group_advantages(rewards, groups, scale=args.scale_rewards)
            for example, advantage in zip(examples, advantages, strict=True):
                example.advantage = advantage
            if all(a == 0.0 for a in advantages):
                logger.warning(
                    "every GRPO advantage is 0 (no task has two rollouts with different rewards): "
                    "the grpo term has no signal"
                )
        return examples

    # ---- one step

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: list[TrajectoryExample],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> torch.Tensor:
        """One step's loss: student forward, teacher forward, distillation, GRPO term.

        Kept as one function on purpose (as nanoGPT's step): the step reads top to bottom, and
        every tensor's shape is named where it is made.
        """
        if return_outputs:
            raise ValueError("HeroTrainer.compute_loss does not return outputs")
        args: HeroConfig = self.args
        split = "train" if model.training else "eval"
        turns = [turn for example in inputs for turn in example.turns]
        device = self.accelerator.device
        pad_id = self.processing_class.pad_token_id

        # Student: every turn's action logits, one forward pass (with grad).
        student_rows = [r for e in inputs for r in student_sequences(e, pack=args.pack_turns)]
        student_logits = action_logits(
            model,
            student_rows,
            pad_token_id=pad_id,
            one_forward=self._one_forward,
            supports_logits_to_keep=self._supports_logits_to_keep,
        )  # (N, V)
        completion_ids = torch.tensor(
            [t for turn in turns for t in turn.completion_ids], device=device
        )  # (N,)
        student_logps = selective_log_softmax(student_logits, completion_ids)  # (N,)
        behaviour_mask = torch.tensor(
            [turn.behaviour_logprobs is not None for turn in turns for _ in turn.completion_ids],
            device=device,
        )
        behaviour_logps = torch.tensor(
            [
                lp
                for turn in turns
                for lp in (turn.behaviour_logprobs or [0.0] * len(turn.completion_ids))
            ],
            dtype=student_logps.dtype,
            device=device,
        )
        metrics = {
            "action_tokens": float(completion_ids.numel()),
            "student_forward_tokens": float(sum(len(r.input_ids) for r in student_rows)),
            "student_rows": float(len(student_rows)),
            "student_logp": student_logps.detach().mean(),
        }

        loss = student_logits.new_zeros(())
        if args.uses_distillation:
            teacher_rows = [r for e in inputs for r in teacher_sequences(e)]
            teacher = model if self.teacher_model is self.model else self.teacher_model
            with torch.no_grad(), self._get_teacher_context_for_self_distillation():
                teacher_logits = action_logits(
                    teacher,
                    teacher_rows,
                    pad_token_id=pad_id,
                    one_forward=self._one_forward,
                    supports_logits_to_keep=self._supports_logits_to_keep,
                )  # (N, V)
            per_token = distillation_loss(
                student_logits,
                teacher_logits,
                completion_ids,
                mode=args.distillation_mode,
                alpha=args.distillation_alpha,
                topk=args.distillation_topk,
                add_tail=args.distillation_add_tail,
                behaviour_logps=behaviour_logps,
                behaviour_mask=behaviour_mask,
                is_clip=args.distillation_is_clip,
            )  # (N,)
            kept = torch.ones_like(per_token, dtype=torch.bool)  # (N,)
            if not args.distill_action_opening:  # the action's opening is left to the student
                kept &= torch.tensor(
                    [
                        i >= turn.opening_length
                        for turn in turns
                        for i in range(len(turn.completion_ids))
                    ],
                    device=device,
                )
            if args.distill_positions == "disagreement":  # where the note changes the decision
                kept &= teacher_logits.argmax(-1) != student_logits.detach().argmax(-1)
            distill = (per_token * kept).sum() / kept.sum().clamp(min=1)
            teacher_logps = selective_log_softmax(teacher_logits, completion_ids)
            if args.distillation_mode == "sampled_token":
                divergence = (student_logps.detach() - teacher_logps).mean()  # k1 estimate of KL
            else:
                divergence = per_token.detach().mean()
            weight = args.distillation_weight if args.signal == "hero+grpo" else 1.0
            loss = loss + weight * distill
            metrics |= {
                "teacher_forward_tokens": float(sum(len(r.input_ids) for r in teacher_rows)),
                "teacher_logp": teacher_logps.mean(),
                "divergence": divergence,
                "distillation_loss": distill.detach(),
                "distilled_share": kept.float().mean(),
            }

        if args.uses_grpo:
            advantages = torch.tensor(
                [e.advantage for e in inputs for turn in e.turns for _ in turn.completion_ids],
                dtype=student_logps.dtype,
                device=device,
            )  # (N,)
            old_logps = torch.where(behaviour_mask, behaviour_logps, student_logps.detach())
            per_token_pg = clipped_surrogate_loss(
                student_logps,
                old_logps,
                advantages,
                epsilon_low=args.epsilon,
                epsilon_high=args.epsilon_high,
            )
            grpo = per_token_pg.mean()
            weight = 1.0 - args.distillation_weight if args.signal == "hero+grpo" else 1.0
            loss = loss + weight * grpo
            metrics |= {"grpo_loss": grpo.detach(), "advantage": advantages.mean()}

        self._record(split, metrics)
        if model.training:
            loss = loss / self.current_gradient_accumulation_steps
        return loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    # ---- metrics and saving

    def _record(self, split: str, metrics: dict[str, float | torch.Tensor]) -> None:
        for name, value in metrics.items():
            value = torch.as_tensor(value, dtype=torch.float32, device=self.accelerator.device)
            self._metrics[split][f"hero/{name}"].append(
                self.accelerator.gather(value.reshape(1)).mean().item()
            )

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        split = "train" if self.model.training else "eval"
        averaged = {k: sum(v) / len(v) for k, v in self._metrics[split].items() if v}
        if split == "eval":
            averaged = {f"eval_{k}": v for k, v in averaged.items()}
        super().log({**logs, **averaged}, start_time)
        self._metrics[split].clear()

    def save_policy(self, path: str | Path) -> Path:
        """Save the trained policy only (the LoRA adapter, or the full model) and its tokenizer.

        Unlike `save_model`, the EMA teacher's adapter is left out: the result is what a policy
        backend loads. Call it on every process (the main one writes; all wait for it).
        """
        path = Path(path)
        model = self.accelerator.unwrap_model(self.model)
        if self.accelerator.is_main_process:
            if is_peft_model(model):
                student = [name for name in model.peft_config if name != "teacher"]
                model.save_pretrained(path, selected_adapters=student)
            else:
                model.save_pretrained(path)
            self.processing_class.save_pretrained(path)
        self.accelerator.wait_for_everyone()
        return path
