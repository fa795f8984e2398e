"""`HeroTrainer` on a CUDA GPU: one LoRA step in bf16 mixed precision."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

from hero_agents.distill import HeroConfig, HeroTrainer

sys.path.insert(0, str(Path(__file__).parents[1] / "distill"))
from distill_helpers import tool_conversation

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("mode", ["hero", "grpo"])
def test_one_bf16_lora_step(tiny_model_dir: Path, tmp_path: Path, mode: str) -> None:
    if not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    reflector = None if mode == "grpo" else "openai:gpt-4o-mini"
    data = [
        tool_conversation(
            f"t{i}", turns=2 + i, task_id=f"t{i % 2}", reward=float(i // 2), reflector=reflector
        )
        for i in range(4)  # distinct episodes, a reward contrast in each task's group
    ]
    args = HeroConfig(
        output_dir=str(tmp_path / "run"),
        bf16=True,  # the HeroConfig default on a GPU
        gradient_checkpointing=False,  # as the loop and `hero distill` run it
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        signal=mode,
        learning_rate=1e-2,
        max_steps=1,
        per_device_train_batch_size=4,
        seed=0,
    )
    trainer = HeroTrainer(str(tiny_model_dir), args=args, train_dataset=data)
    lora_b = {
        name: parameter.detach().clone()
        for name, parameter in trainer.model.named_parameters()
        if "lora_B" in name and ".default." in name
    }
    outputs: list[torch.dtype] = []
    projection = trainer.model.get_base_model().model.layers[0].self_attn.q_proj.base_layer
    projection.register_forward_hook(lambda module, args, output: outputs.append(output.dtype))

    trainer.train()

    assert trainer.accelerator.mixed_precision == "bf16"
    assert trainer.accelerator.device.type == "cuda"
    assert {p.device.type for p in trainer.model.parameters()} == {"cuda"}
    assert {p.dtype for p in trainer.model.parameters() if p.requires_grad} == {torch.float32}
    assert outputs and set(outputs) == {torch.bfloat16}  # the forwards ran under bf16 autocast
    logged = next(row for row in trainer.state.log_history if "loss" in row)
    assert math.isfinite(logged["loss"])
    trained = dict(trainer.model.named_parameters())
    assert lora_b and all(not torch.equal(trained[n], before) for n, before in lora_b.items())
    saved = trainer.save_policy(tmp_path / "adapter")
    assert (saved / "adapter_model.safetensors").is_file()
