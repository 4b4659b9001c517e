"""Numeric mode of a trial's training passes (synthesis + features): precision, kernel choice, determinism.

Precisions (`TrainConfig.precision`):
  fp32  IEEE float32 everywhere (on GPUs TF32 is switched off for matrix products and convolutions)
  tf32  float32 tensors, TF32 matrix units for matrix products and convolutions (GPUs; as fp32 on CPUs)
  bf16  bfloat16 autocast of synthesis and features; the losses, the optimiser and evaluation stay float32
  auto  GPU_DEFAULT on a GPU, fp32 on the CPU
GPU_DEFAULT is the fastest mode whose gradients and metrics matched fp32 on an H200 (evaluation/results/gpu.md):
tf32, 1.9× fp32's speed on the FFHQ-512-sized step; bf16 was no faster and 35 % off fp32's gradient, as the losses
contrast small differences of features that bfloat16 cancels.
The settings are process-wide (torch.backends flags): one trial per process, as Ray runs them.
"""

import contextlib
import os
from collections.abc import Iterator
from typing import Literal

import torch

Precision = Literal["auto", "fp32", "tf32", "bf16"]
GPU_DEFAULT: Precision = "tf32"


def resolve(precision: Precision, device: torch.device) -> Precision:
    """The concrete precision of `precision` on `device` (auto → GPU_DEFAULT on CUDA, fp32 elsewhere)."""
    if precision == "auto":
        return GPU_DEFAULT if device.type == "cuda" else "fp32"
    return precision


def configure(precision: Precision, device: torch.device, deterministic: bool) -> None:
    """Sets the process-wide kernel flags for `precision` (resolved) on `device`. Deterministic mode asks
    for deterministic kernels (cuBLAS workspace, no cuDNN autotuning) so reruns and resumes are bit-identical on
    one GPU; otherwise cuDNN autotunes its convolution algorithms."""
    if device.type != "cuda":
        return
    tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(deterministic, warn_only=True)


@contextlib.contextmanager
def exact() -> Iterator[None]:
    """IEEE float32 matrix products and convolutions within the block (evaluation), whatever the trial's mode."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def autocast(precision: Precision, device: torch.device) -> contextlib.AbstractContextManager:
    """bfloat16 autocast for `bf16`, nothing otherwise."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
