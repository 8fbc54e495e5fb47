"""Where trials run: the device `trainer.accelerator` names, and the precision used there."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from automl.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import torch


def choose_device(accelerator: str) -> "torch.device":
    import torch

    if accelerator == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if accelerator in ("cuda", "gpu"):
        if not torch.cuda.is_available():
            raise ConfigError("trainer.accelerator=cuda but torch sees no CUDA device: use trainer.accelerator=auto")
        return torch.device("cuda")
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("trainer.accelerator=mps but MPS is not available: use trainer.accelerator=auto")
    if accelerator not in ("cpu", "mps"):
        raise ConfigError(f"trainer.accelerator={accelerator!r} is not valid: use auto, cpu, cuda or mps")
    return torch.device(accelerator)


def autocast_context(device: "torch.device", precision: str) -> Any:
    """bf16 autocast on GPUs that support it (precision auto or bf16); full precision otherwise."""
    import torch

    if device.type == "cuda" and precision in ("auto", "bf16") and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if device.type == "cpu" and precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()
