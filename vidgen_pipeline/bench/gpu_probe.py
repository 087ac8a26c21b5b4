"""Measuring one pipeline call: per-step times (``callback_on_step_end``), the VAE decode on
its own (``vae.decode`` timed in place), peak memory, and FLOPs counted with
``FlopCounterMode``. Nothing here is added inside the denoiser: a compiled one would trace it.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

SEED = 1234


def sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


class Probe:
    """Calls a pipeline with a fixed seed; keeps the ends of its steps and the seconds spent
    in ``vae.decode`` (summed over chunks: SVD decodes in several)."""

    def __init__(self, pipe, device: str):
        self.pipe = pipe
        self.device = device
        self.ends: list[float] = []
        self.decode_s = 0.0

    def call(self, arguments: dict[str, Any], steps: int, decode: bool = True) -> np.ndarray:
        """One call of ``steps`` steps; returns the frames, float32 in [0, 1] (the latents
        without ``decode``)."""
        import torch

        self.ends, self.decode_s = [], 0.0
        vae = self.pipe.vae
        inner = vae.decode

        def timed_decode(*args, **kwargs):
            sync(self.device)
            started = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                sync(self.device)
                self.decode_s += time.perf_counter() - started

        def on_step_end(_pipe, _step, _timestep, callback_kwargs):
            sync(self.device)
            self.ends.append(time.perf_counter())
            return callback_kwargs

        vae.decode = timed_decode  # an instance attribute, dropped below
        try:
            out = self.pipe(
                num_inference_steps=steps,
                generator=torch.Generator("cpu").manual_seed(SEED),
                output_type="np" if decode else "latent",
                callback_on_step_end=on_step_end,
                **arguments,
            )
        finally:
            del vae.decode
        return np.asarray(out.frames[0].float().cpu() if not decode else out.frames[0], np.float32)

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.ends, self.ends[1:], strict=False)]

    def step_seconds(self) -> float | None:
        """The median gap between step ends (the first step's start is the call's setup)."""
        gaps = self.gaps()
        return statistics.median(gaps) if gaps else None


class Memory:
    """Peak memory: CUDA allocations on a GPU; the process's peak RSS on the CPU (reset
    through /proc/self/clear_refs where Linux allows it)."""

    def __init__(self, device: str):
        self.device = device
        self.kind = "cuda max allocated" if device == "cuda" else "process peak RSS"

    def reset(self) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.reset_peak_memory_stats()
            return
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            self.kind = "process peak RSS since start"

    def peak_mb(self) -> float:
        if self.device == "cuda":
            import torch

            return round(torch.cuda.max_memory_allocated() / 2**20, 1)
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
        except OSError:
            pass
        import resource

        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class PassRecorder:
    """Counts the denoiser's calls and keeps the arguments of its first (a forward pre-hook
    on the top-level model: used on the uncompiled ``default`` recipe only)."""

    def __init__(self, model):
        self.model = model
        self.calls = 0
        self.args: tuple = ()
        self.kwargs: dict[str, Any] = {}
        self._handle = model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, _module, args, kwargs):
        import torch

        if self.calls == 0:

            def keep(x):
                return x.detach().clone() if isinstance(x, torch.Tensor) else x

            self.args = tuple(keep(a) for a in args)
            self.kwargs = {k: keep(v) for k, v in kwargs.items()}
        self.calls += 1

    def remove(self) -> None:
        self._handle.remove()

    def flops(self) -> float | None:
        """FLOPs of one call with the first call's arguments."""
        if self.calls == 0:
            return None
        return count_flops(self.model, self.args, self.kwargs)


def count_flops(model, args: tuple, kwargs: dict[str, Any]) -> float:
    """FLOPs of ``model(*args, **kwargs)`` by ``FlopCounterMode`` (matrix products and
    attention; element-wise work is not counted, as is usual for a floor)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    _register_cpu_attention()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*args, **kwargs)
    return float(counter.get_total_flops())


def _register_cpu_attention() -> None:
    """PyTorch counts its CUDA attention kernels but not the CPU one that SDPA picks on the
    CPU: count it as the same attention (tiny models would miss their attention otherwise)."""
    import torch
    from torch.utils import flop_counter

    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if op is None or op in flop_counter.flop_registry:
        return

    @flop_counter.register_flop_formula(op)
    def _cpu_attention(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs):
        return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)


def frame_difference(frames: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Max abs difference and PSNR (dB, peak 1) of frames in [0, 1]."""
    import math

    diff = np.abs(frames.astype(np.float64) - reference.astype(np.float64))
    mse = float((diff**2).mean())
    return {
        "max_abs_diff": float(diff.max()),
        "psnr_db": math.inf if mse == 0 else round(10 * math.log10(1 / mse), 2),
    }
