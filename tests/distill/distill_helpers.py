"""Trajectories for the distillation tests: real OpenAI-format tool conversations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from hero_agents.messages import template_messages
from hero_agents.trajectory import Diagnosis, Message, TokenTrace, Trajectory, Turn

FIND_ORDER = {
    "type": "function",
    "function": {
        "name": "find_order",
        "description": "Find an order by id.",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "integer"}}},
    },
}


def tool_call(name: str, call_id: str, **arguments: Any) -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }


def tool_conversation(
    trajectory_id: str = "t0",
    *,
    turns: int = 3,
    task_id: str | None = "task-a",
    reward: float | None = 1.0,
    reflector: str | None = "openai:gpt-4o-mini",
    final_answer: bool = True,
) -> Trajectory:
    """An append-only agent episode: `turns` policy calls; each but (optionally) the last calls
    find_order and gets a tool result; the last answers in text."""
    messages: list[Message] = [
        {"role": "system", "content": "You help users with orders."},
        {"role": "user", "content": "Where is my order 12?"},
    ]
    recorded = []
    for index in range(turns):
        if final_answer and index == turns - 1:
            action: Message = {"role": "assistant", "content": "Your order is shipped."}
            observation: list[Message] = []
        else:
            call_id = f"call_{index}"
            action = {
                "role": "assistant",
                "content": "",
                "tool_calls": [tool_call("find_order", call_id, order_id=12 + index)],
            }
            observation = [
                {
                    "role": "tool",
                    "tool_call_id": call_id,
                    "content": json.dumps({"status": "shipped", "order_id": 12 + index}),
                }
            ]
        recorded.append(
            Turn(
                index=index,
                messages=list(messages),
                tools=[FIND_ORDER],
                action=action,
                observation=observation,
            )
        )
        messages = [*messages, action, *observation]
    diagnoses = None
    if reflector is not None:
        diagnoses = [
            Diagnosis(
                turn_index=i,
                necessity="necessary",
                validity="valid",
                hint=f"Turn {i}: check the order status before answering.",
                reflector=reflector,
            )
            for i in range(turns)
        ]
    return Trajectory(
        id=trajectory_id, task_id=task_id, turns=recorded, reward=reward, diagnoses=diagnoses
    )


def with_tokens(trajectory: Trajectory, tokenizer: Any) -> Trajectory:
    """The same trajectory with captured tokens (as a backend would report them): the
    template's own tokenization and made-up behaviour log-probs."""
    from hero_agents.distill.examples import build_examples

    examples = build_examples([trajectory], tokenizer, signal="grpo")[0]
    turns = []
    for turn, example in zip(trajectory.turns, examples.turns, strict=True):
        trace = TokenTrace(
            prompt_token_ids=example.prompt_ids,
            completion_token_ids=example.completion_ids,
            completion_logprobs=[-1.0] * len(example.completion_ids),
        )
        turns.append(turn.model_copy(update={"tokens": trace}))
    return trajectory.model_copy(update={"turns": turns})


NOTE_TEMPLATE = "Hindsight note: {hint}"
INFORMATIVE_HINT = "The right reply was refund."
UNINFORMATIVE_HINT = "No issue with this step."
PREFERRED, USUAL = "refund", "cancel"
"""The note-following model answers PREFERRED after an informative note, USUAL otherwise."""


def note_contexts() -> list[list[Message]]:
    """Contexts the note-following model is trained on: ending with a tool result or a user."""
    contexts = []
    for order, question in enumerate(["find my order", "where is my item"]):
        user = [
            {"role": "system", "content": "You help."},
            {"role": "user", "content": question},
        ]
        call = {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": f"call_{order}",
                    "type": "function",
                    "function": {"name": "find_order", "arguments": f'{{"order_id": {order}}}'},
                }
            ],
        }
        result = {"role": "tool", "tool_call_id": f"call_{order}", "content": '{"status": "late"}'}
        contexts += [[*user, call, result], user]
    return contexts


def _encode(tokenizer: Any, messages: list[Message], answer: str) -> tuple[list[int], list[int]]:
    prompt = tokenizer.apply_chat_template(
        template_messages(messages), tokenize=False, add_generation_prompt=True
    )
    return (
        tokenizer(prompt, add_special_tokens=False)["input_ids"],
        tokenizer(answer + tokenizer.eos_token, add_special_tokens=False)["input_ids"],
    )


def train_note_following_model(tiny_model_dir: Path, out: Path) -> Path:
    """The tiny model, fine-tuned (45 full-batch AdamW steps, seeded) so that on the contexts of
    `note_contexts`: no note -> USUAL; an uninformative note -> USUAL; the informative note ->
    PREFERRED. Its student (no note) gives PREFERRED a log-prob near -5; its teacher (with the
    informative note) near 0."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    rows = []
    for context in note_contexts():
        rows.append(_encode(tokenizer, context, USUAL))
        for hint, answer in ((UNINFORMATIVE_HINT, USUAL), (INFORMATIVE_HINT, PREFERRED)):
            note = {"role": "user", "content": NOTE_TEMPLATE.format(hint=hint)}
            rows.append(_encode(tokenizer, [*context, note], answer))
    length = max(len(p) + len(c) for p, c in rows)
    input_ids = torch.full((len(rows), length), tokenizer.pad_token_id)
    labels = torch.full((len(rows), length), -100)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, (prompt, completion) in enumerate(rows):
        n = len(prompt) + len(completion)
        input_ids[i, :n] = torch.tensor(prompt + completion)
        labels[i, len(prompt) : n] = torch.tensor(completion)
        mask[i, :n] = 1
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(45):
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def cpu_config(out: Path, **fields: Any) -> Any:
    """A `HeroConfig` for quick CPU runs: no checkpoints, no reporting, no progress bar."""
    from hero_agents.distill import HeroConfig

    defaults: dict[str, Any] = {
        "output_dir": str(out),
        "use_cpu": True,
        "bf16": False,
        "gradient_checkpointing": False,
        "report_to": "none",
        "save_strategy": "no",
        "disable_tqdm": True,
    }
    return HeroConfig(**{**defaults, **fields})


def answering_with(model_dir: Path, token: int) -> Any:
    """The tiny model with its head replaced so that `token` is every position's likeliest."""
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    hidden, vocabulary = model.config.hidden_size, model.config.vocab_size
    head = torch.nn.Linear(hidden, vocabulary, bias=True)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(-10.0)
        head.bias[token] = 10.0
    model.lm_head = head
    model.config.tie_word_embeddings = False
    return model
