"""Mixed precision for learning: the frozen model in half precision, everything that learns in fp32.

The path is the same on every device (and is tested on the CPU, where it is slow but exact about dtypes):

- the UNet, VAE and text encoders stay in the dtype they were loaded in (bf16 or fp16 on a GPU);
- the learner, its optimizer state and its gradients are fp32; its tokens are cast to each text encoder's
  dtype where they enter the model (`TokenInjection`), so the gradient flows back into fp32;
- the latents, the noise, the noisy input and the target are made in fp32; only the UNet's input is cast;
- the loss is taken in fp32. With fp16 it is multiplied by a loss scale before the backward pass
  (`torch.amp.GradScaler`, which works on the CPU too), so that gradients small enough to underflow
  fp16's range inside the frozen model survive; steps whose gradients overflow are skipped and the scale
  lowered. bf16 has fp32's range and needs no scale.
"""

from __future__ import annotations

import torch

from anybody.errors import UsageError


def loss_scaler(device: torch.device, dtype: torch.dtype) -> torch.amp.GradScaler:
    """A dynamic loss scale for fp16; a pass-through (disabled) scaler for every other dtype."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)


def check_request(device: str | None, dtype: str | None) -> None:
    """`check_precision` of what `load_pipeline(device=..., dtype=...)` would pick, before it loads anything."""
    from anybody.models.loading import pick_device, pick_dtype

    chosen = pick_device(device)
    check_precision(chosen, pick_dtype(chosen, dtype))


def check_precision(device: torch.device, dtype: torch.dtype) -> None:
    """Refuse, in one line, a dtype the device cannot compute in (before a model is loaded).

    What fails for real: bf16 on a CUDA GPU that cannot even emulate it, and bf16 on MPS before macOS 14.
    fp16 and bf16 both run on the CPU (torch 2.13's CPU build has half kernels for every op the models use;
    the tests learn and draw with both on every family).
    """
    if dtype != torch.bfloat16:
        return
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UsageError(f"This GPU ({torch.cuda.get_device_name(device)}) cannot compute in bf16",
                         "Use --dtype fp16 (or leave --dtype out: fp16 is then the default on this GPU)")
    if device.type == "mps" and not torch.backends.mps.is_macos_or_newer(14, 0):
        raise UsageError("bf16 needs macOS 14 or newer on Apple GPUs (MPS)",
                         "Use --dtype fp16 (the default on MPS), or update macOS")
