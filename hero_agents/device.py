"""Where the in-process policy runs, and in which precision it samples there.

A device spec is ``auto`` (the current CUDA GPU when torch sees one, else the CPU), ``cpu``,
``cuda`` (the current CUDA GPU) or ``cuda:N``. A CUDA device that torch does not see is a
`ConfigError`, never a silent fall-back to the CPU.
"""

from __future__ import annotations

import torch

from hero_agents.errors import ConfigError

DEVICE_SPECS = ("auto", "cpu", "cuda", "cuda:N")
"""The forms a device spec takes."""


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """The torch device `spec` names (see the module doc); CUDA devices get their index."""
    text = str(spec).strip().lower()
    if text == "auto":
        return _cuda(None) if torch.cuda.is_available() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    kind, colon, index = text.partition(":")
    if kind != "cuda" or (colon and not index.isdigit()):
        raise ConfigError(f"unknown device {str(spec)!r}; use one of {', '.join(DEVICE_SPECS)}")
    if not torch.cuda.is_available():
        reason = (
            f"this torch ({torch.__version__}) is built without CUDA"
            if torch.version.cuda is None
            else "torch sees no CUDA GPU on this machine"
        )
        raise ConfigError(f"device {str(spec)!r} was asked for but {reason}; use auto or cpu")
    return _cuda(int(index) if index else None, spec=str(spec))


def sampling_dtype(device: torch.device) -> torch.dtype:
    """The dtype the policy samples in on `device`: bf16 on a GPU that supports it, else fp32."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def _cuda(index: int | None, *, spec: str = "cuda") -> torch.device:
    count = torch.cuda.device_count()
    number = torch.cuda.current_device() if index is None else index
    if number >= count:
        raise ConfigError(
            f"device {spec!r} does not exist: torch sees {count} CUDA GPU(s), "
            f"cuda:0 to cuda:{count - 1}"
        )
    return torch.device("cuda", number)
