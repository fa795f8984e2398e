"""One ``hero train`` iteration on a CUDA GPU with the tiny model: rollouts, ``self``
reflection, distillation, sync and evaluation, with the in-process policy sampling on the GPU.

It builds the run as ``hero train`` does (`hero_agents.cli.wiring`), with its own backend so
that it can watch where the policy's forward passes run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from hero_agents.adapters.policy.backends import InProcessBackend
from hero_agents.cli.wiring import llm_reflectors, open_session
from hero_agents.loop.config import load_train_config
from hero_agents.loop.training import prepare_run, run_training

pytestmark = pytest.mark.gpu


def test_one_iteration_samples_and_reflects_on_the_gpu(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERO_CACHE", str(tmp_path / "cache"))  # a warm start of its own
    settings = {
        "env": "tau2:mock",
        "model": str(tiny_model_dir),
        "method": "hero",
        "reflector": "self",
        "warmup": {"steps": 1},
        "rollout": {"tasks": 2, "group_size": 2, "max_turns": 2, "max_new_tokens": 12},
        "eval": {"tasks": 3, "max_turns": 2},
        "budget": {"iterations": 1},
    }
    path = tmp_path / "gpu.yaml"
    path.write_text(yaml.safe_dump(settings))
    config = load_train_config(path)
    session = open_session(config)
    backend = InProcessBackend(session.warm_model, device="cuda", max_batch=8)
    model = backend.policy(temperature=1.0, max_new_tokens=1).model  # shared by every copy
    inputs: list[torch.device] = []
    model.get_input_embeddings().register_forward_hook(
        lambda module, args, output: inputs.append(args[0].device)
    )
    try:
        prepare_run(config, tmp_path / "run")
        run_training(
            config,
            tmp_path / "run",
            session=session,
            backend=backend,
            llm_reflector=llm_reflectors(backend),
        )
    finally:
        backend.close()

    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert [row["iteration"] for row in rows] == [0, 1]
    last = rows[-1]
    assert last["policy_version"] == "policy-v1" and last["reflect"]["reflector"] == "self"
    assert last["reflect"]["diagnosed"] == 4 and last["train"]["steps"] >= 1
    assert last["eval"]["episodes"] == 3
    # Rollouts, self-reflection and evaluation all ran on the GPU, in its sampling dtype.
    assert inputs and set(inputs) == {backend.device} and backend.device.type == "cuda"
    expected = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    assert {p.dtype for p in model.parameters()} == {expected}
