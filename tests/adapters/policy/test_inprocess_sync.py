"""After a weight sync the in-process policy holds exactly the trainer's merged weights, in the
policy's own dtype and on its device: fp32 on the CPU, bf16 on a GPU (where the merge must
happen in full precision before the cast, as the trainer's own merge does)."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from hero_agents.adapters.policy.backends import InProcessBackend
from hero_agents.adapters.policy.transformers_chat import TransformersChatModel
from hero_agents.distill import HeroConfig, HeroTrainer

sys.path.insert(0, str(Path(__file__).parents[2] / "distill"))
from distill_helpers import tool_conversation

PROMPT = "<|im_start|>user\nFind order 1042 and cancel it.<|im_end|>\n<|im_start|>assistant\n"


def trained(model_dir: Path, out: Path, device: str) -> HeroTrainer:
    """One LoRA step of HeroTrainer on `device` (bf16 autocast on a GPU that has it)."""
    on_gpu = device == "cuda"
    args = HeroConfig(
        output_dir=str(out),
        use_cpu=not on_gpu,
        bf16=on_gpu and torch.cuda.is_bf16_supported(),
        gradient_checkpointing=False,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        signal="env-feedback",
        teacher_model_kind="live",
        learning_rate=5e-2,
        max_steps=1,
        seed=0,
    )
    data = [tool_conversation(f"t{i}", reflector="env-feedback") for i in range(2)]
    trainer = HeroTrainer(str(model_dir), args=args, train_dataset=data)
    trainer.train()
    return trainer


@pytest.mark.parametrize(
    ("device", "dtype"),
    [
        pytest.param("cpu", None, id="cpu-fp32"),
        pytest.param("cpu", torch.bfloat16, id="cpu-bf16"),  # the GPU's precision path
        pytest.param("cuda", None, marks=pytest.mark.gpu, id="cuda"),
    ],
)
def test_synced_policy_equals_the_trainers_merged_model(
    tiny_model_dir: Path, tmp_path: Path, device: str, dtype: torch.dtype | None
) -> None:
    trainer = trained(tiny_model_dir, tmp_path / "trainer", device)
    adapter = trainer.save_policy(tmp_path / "adapter")
    policy = TransformersChatModel.from_pretrained(tiny_model_dir, device=device, dtype=dtype)
    model = policy.model
    where, dtype = model.device, model.dtype
    before = {name: value.clone() for name, value in model.state_dict().items()}

    policy.load_adapter(adapter, version="policy-v1")  # what InProcessBackend.sync does

    merged = copy.deepcopy(trainer.model).merge_and_unload().state_dict()
    assert next(iter(merged.values())).dtype == torch.float32  # the trainer's master weights
    synced = model.state_dict()
    assert synced.keys() == merged.keys()
    changed = 0
    for name, value in synced.items():
        assert value.device == where and value.dtype == dtype, name
        assert torch.equal(value, merged[name].to(where, dtype)), name
        changed += not torch.equal(value, before[name])
    assert changed > 0  # the step moved the adapter, so the sync changed weights

    # Its outputs are those of a plain model of the policy's dtype holding the merged weights.
    reference = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=dtype)
    reference.load_state_dict(merged)
    reference.to(where).eval()
    ids = policy.tokenizer(PROMPT, return_tensors="pt", add_special_tokens=False).input_ids
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids.to(where)).logits, reference(ids.to(where)).logits)

    # Back to the warm start, exactly.
    policy.restore_initial_weights()
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_the_backend_syncs_resets_and_reflects_with_one_model(
    tiny_model_dir: Path, tmp_path: Path, device: str
) -> None:
    adapter = trained(tiny_model_dir, tmp_path / "trainer", device).save_policy(tmp_path / "a")
    backend = InProcessBackend(tiny_model_dir, device=device)
    policy = backend.policy(temperature=0, max_new_tokens=4)
    assert backend.device.type == device
    assert backend.sync(adapter, version="policy-v1") == "policy-v1"
    assert policy.invoke("Hi").response_metadata["hero"]["policy_version"] == "policy-v1"

    inputs: list[torch.device] = []
    hook = policy.model.get_input_embeddings().register_forward_hook(
        lambda module, args, output: inputs.append(args[0].device)
    )
    with backend.self_reflector(format_retries=0) as reflector:
        [result] = reflector.reflect([tool_conversation("r", turns=2)])
    hook.remove()
    assert result.ok, result.error
    assert inputs and set(inputs) == {backend.device}  # the policy's own model read the episode

    backend.reset()
    assert policy.invoke("Hi").response_metadata["hero"]["policy_version"] == "base"
