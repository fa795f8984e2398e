"""One rank of a 2-process CPU (gloo) run of HeroTrainer, launched by torchrun from a test.

torchrun --nproc_per_node 2 ddp_worker.py MODEL_DIR OUT_DIR MODE
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from distill_helpers import cpu_config, tool_conversation

from hero_agents.distill import HeroTrainer


def main() -> None:
    model_dir, out, mode = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    reflector = {"grpo": None, "env-feedback": "env-feedback"}.get(mode, "self")
    trajectories = [
        tool_conversation(
            f"t{i}", turns=2 + i % 3, task_id=f"task{i % 2}", reward=float(i // 2 % 2),
            reflector=reflector,
        )
        for i in range(8)
    ]  # fmt: skip
    args = cpu_config(
        out / "run", signal=mode, max_steps=2, learning_rate=1e-2, per_device_train_batch_size=2
    )
    trainer = HeroTrainer(model_dir, args=args, train_dataset=trajectories)
    trainer.train()
    trainer.save_policy(out / "adapter")  # on every rank: it ends with a barrier
    trainable = [p.detach() for p in trainer.model.parameters() if p.requires_grad]
    rank = trainer.accelerator.process_index
    report = {
        "processes": trainer.accelerator.num_processes,
        "one_forward": trainer._one_forward,
        "losses": [row["loss"] for row in trainer.state.log_history if "loss" in row],
        "weights_sum": float(sum(p.double().sum() for p in trainable)),
        "weights_norm": float(torch.sqrt(sum((p.double() ** 2).sum() for p in trainable))),
    }
    (out / f"rank{rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main()
