"""Device specs of the in-process policy: auto picks CUDA only when there is one, a CUDA device
that is not there is one clear error line, and the policy samples where it was put."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hero_agents.adapters.envs.user_sim import load_user_sim
from hero_agents.adapters.policy import TransformersChatModel, load_policy
from hero_agents.adapters.policy.backends import InProcessBackend
from hero_agents.adapters.reflectors import load_reflector
from hero_agents.device import resolve_device, sampling_dtype
from hero_agents.errors import ConfigError

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")


def one_line_error(spec: str) -> str:
    with pytest.raises(ConfigError) as info:
        resolve_device(spec)
    message = str(info.value)
    assert "\n" not in message and repr(spec) in message
    return message


def test_cpu_is_the_cpu() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert sampling_dtype(torch.device("cpu")) == torch.float32


@pytest.mark.parametrize("spec", ["gpu", "cuda:", "cuda:one", "cuda:-1", "mps", ""])
def test_an_unknown_spec_lists_the_valid_forms(spec: str) -> None:
    assert "auto, cpu, cuda, cuda:N" in one_line_error(spec)


@no_cuda
def test_auto_is_the_cpu_without_cuda() -> None:
    assert resolve_device("auto") == torch.device("cpu")


@no_cuda
@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_a_gpu_is_one_clear_error(spec: str) -> None:
    message = one_line_error(spec)
    assert "was asked for but" in message and "use auto or cpu" in message


@no_cuda
def test_every_in_process_entry_point_refuses_cuda_without_a_gpu(tiny_model_dir: Path) -> None:
    with pytest.raises(ConfigError, match="'cuda' was asked for"):
        TransformersChatModel.from_pretrained(tiny_model_dir, device="cuda")
    with pytest.raises(ConfigError, match="'cuda:1' was asked for"):
        load_policy(str(tiny_model_dir), device="cuda:1")
    with pytest.raises(ConfigError, match="'cuda' was asked for"):
        InProcessBackend(tiny_model_dir, device="cuda")
    with pytest.raises(ConfigError, match="'cuda' was asked for"):
        load_reflector(str(tiny_model_dir), device="cuda")
    with pytest.raises(ConfigError, match="'cuda' was asked for"):
        load_user_sim(str(tiny_model_dir), device="cuda")


def test_the_policy_samples_on_the_cpu_in_fp32_when_asked(tiny_model_dir: Path) -> None:
    backend = InProcessBackend(tiny_model_dir, device="cpu")
    policy = backend.policy(temperature=0, max_new_tokens=3)
    assert backend.device == torch.device("cpu")
    assert {p.dtype for p in policy.model.parameters()} == {torch.float32}
    assert policy.invoke("Hi").response_metadata["finish_reason"] in ("stop", "length")


@pytest.mark.gpu
def test_auto_and_cuda_are_the_current_gpu() -> None:
    current = torch.device("cuda", torch.cuda.current_device())
    assert resolve_device("auto") == current
    assert resolve_device("cuda") == current
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    expected = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    assert sampling_dtype(current) == expected


@pytest.mark.gpu
def test_a_gpu_beyond_the_count_is_one_clear_error() -> None:
    count = torch.cuda.device_count()
    message = one_line_error(f"cuda:{count}")
    assert f"torch sees {count} CUDA GPU(s)" in message
