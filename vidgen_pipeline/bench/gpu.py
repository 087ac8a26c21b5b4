"""The GPU section: SVD-XT with random weights under each speed recipe, in one process.

Full size (CUDA): the real SVD-XT configs (``svd_configs.FULL``), 25 frames at 576x1024.
``--tiny`` (or no CUDA): the test fixtures' sizes on the CPU, so the code runs anywhere.

For every recipe, on a fresh copy of the same random weights: one warm-up call (this is
where ``torch.compile`` pays), then one timed call of ``steps`` steps with the same seed.
Reported: seconds per denoising step (median of the gaps between step ends), seconds per
25-step clip (the timed call with its steps scaled to 25: estimated; the ``fast`` recipe
also runs a real 25-step clip), VAE decode seconds, peak memory, the output's difference
from the ``default`` recipe's (latents, and frames decoded with the same decode chunk, since
SVD's temporal decoder mixes the frames of a chunk), the UNet's FLOPs per step (counted once
with ``FlopCounterMode``) over the step time as a share of the H200's 989 TFLOP/s, and the
ratio to ``default``.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from vidgen_pipeline.bench.common import (
    PEAK_TFLOPS,
    BenchContext,
    SectionResult,
    fmt,
    markdown_table,
)
from vidgen_pipeline.bench.svd_configs import build_svd, clone_pipeline, configs, parameter_counts

# fast last: its compile warm-up is the one long unknown; what ran before is saved first.
DEFAULT_RECIPES = ("default", "brief", "low_memory", "fast")
CLIP_STEPS = 25
FEW_STEPS = 4  # animatelcm-svd-xt's default
SEED = 1234
FULL_BUDGET_S = 480  # the whole section, on one H200
FULL_SWEEP = (2, 8, 14, 25)
TINY_SWEEP = (1, 2, 4)


def gpu_section(ctx: BenchContext) -> SectionResult:
    import torch

    from vidgen_pipeline.core import recipes

    section_started = time.perf_counter()
    tiny = ctx.tiny or not torch.cuda.is_available()
    device = "cpu" if tiny else "cuda"
    size = "tiny" if tiny else "full"
    run = configs(size)["run"]
    steps = int(ctx.option("steps", 3 if tiny else 4))
    if not 2 <= steps <= 10:
        raise ValueError("steps must be 2..10 (per-step figures come from the gaps between steps)")
    names = list(ctx.option("recipes", DEFAULT_RECIPES))
    if "default" in names:
        names.remove("default")
    names.insert(0, "default")  # everything is compared with it
    chosen = [recipes.get_recipe(n) for n in names]
    budget = float(ctx.option("budget_s", FULL_BUDGET_S if not tiny else 120))
    call_chunk = 8 if not tiny else 2  # what the caller asks for (video.py on a GPU: 8)
    key = "gpu-tiny" if tiny else "gpu"

    data: dict[str, Any] = {
        "size": size,
        "device": device,
        "height": run["height"],
        "width": run["width"],
        "frames": run["num_frames"],
        "steps_timed": steps,
        "call_decode_chunk": call_chunk,
        "peak_tflops": PEAK_TFLOPS,
        "seed": SEED,
        "recipes": {},
    }

    def checkpoint(complete: bool = False) -> SectionResult:
        result = SectionResult(key, _title(tiny), data, _markdown(data, tiny), complete)
        ctx.checkpoint(result)
        return result

    ctx.log(f"gpu: building {size} SVD-XT with random weights")
    started = time.perf_counter()
    master = build_svd(size, device="cuda" if device == "cuda" else "cpu", seed=0)
    master.to("cpu")
    _free(device)
    data["build_s"] = round(time.perf_counter() - started, 2)
    data["parameters"] = parameter_counts(master)
    image = _test_image(run["width"], run["height"])
    call = {
        "height": run["height"],
        "width": run["width"],
        "num_frames": run["num_frames"],
        "decode_chunk_size": call_chunk,
        "fps": run["fps"],
        "motion_bucket_id": 127,
        "noise_aug_strength": 0.02,
    }
    reference: dict[str, Any] = {}

    for recipe in chosen:
        elapsed = time.perf_counter() - section_started
        last = next(
            (r["recipe_s"] for r in reversed(data["recipes"].values()) if "recipe_s" in r), 0
        )
        if recipe.name != "default" and elapsed + 1.5 * last > budget:
            data["recipes"][recipe.name] = {"skipped": f"time budget ({budget:.0f} s) spent"}
            continue
        ctx.log(f"gpu: recipe {recipe.name}")
        try:
            figures = _measure(master, recipe, device, image, call, steps, reference, ctx)
        except Exception as exc:  # noqa: BLE001  one recipe failing must not lose the others
            figures = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
            if recipe.name == "default":
                data["recipes"]["default"] = figures
                break
        finally:
            _free(device)
            recipes.restore_global_defaults()
        data["recipes"][recipe.name] = figures
        if recipe.name == "default" and "error" not in figures:
            data["flops_per_step"] = reference["flops"]
            data["decode_sweep"] = reference["sweep"]
        _ratios(data)
        checkpoint()

    data["seconds"] = round(time.perf_counter() - section_started, 1)
    return checkpoint(complete=True)


# ------------------------------------------------------------------------------ measuring


def _measure(master, recipe, device, image, call, steps, reference, ctx) -> dict[str, Any]:
    import torch

    from vidgen_pipeline.core import recipes

    started = time.perf_counter()
    pipe = clone_pipeline(master)
    notes = recipes.apply_recipe(pipe, recipe, device)
    memory = _Memory(device)
    memory.reset()
    probe = _Probe(pipe, device)
    flop_args = None
    if recipe.name == "default":
        flop_args = _capture_unet_call(pipe.unet)

    t0 = time.perf_counter()
    probe.call(image, call, steps=1)
    warmup_s = time.perf_counter() - t0
    if flop_args is not None:
        flop_args["handle"].remove()

    probe.reset()
    t0 = time.perf_counter()
    frames = probe.call(image, call, steps=steps)
    call_s = time.perf_counter() - t0
    step_s = probe.step_seconds()
    figures: dict[str, Any] = {
        "summary": recipe.summary,
        "notes": notes,
        "settings": recipes.describe(recipe),
        "warmup_s": round(warmup_s, 3),
        "call_s": round(call_s, 3),
        "step_s": _round(step_s),
        "step_s_all": [round(s, 4) for s in probe.gaps()],
        "decode_s": _round(probe.decode_s),
        "decode_chunk": probe.decode_chunk,
        "clip_s_est": _round(call_s + (CLIP_STEPS - steps) * step_s) if step_s else None,
        "peak_memory_mb": memory.peak_mb(),
        "peak_memory_kind": memory.kind,
        "finite": bool(np.isfinite(frames).all()),
    }
    latents = probe.latents
    if recipe.name == "default":
        reference["latents"] = latents
        reference["frames"] = {}
        reference["flops"] = _count_flops(pipe.unet, flop_args) if flop_args else None
        reference["sweep"] = _decode_sweep(pipe, latents, call, reference, device, ctx)
        figures["latent_max_abs_diff"] = 0.0
        figures["frames_max_abs_diff"] = 0.0
        figures["psnr_db"] = math.inf
    else:
        chunk = min(probe.decode_chunk or call["decode_chunk_size"], call["num_frames"])
        ref_frames = reference.get("frames", {}).get(chunk)
        ref_latents = reference.get("latents")
        if ref_latents is not None and latents is not None:
            figures["latent_max_abs_diff"] = _round(
                float((latents.float() - ref_latents.float()).abs().max())
            )
        if ref_frames is not None:
            diff = np.abs(frames.astype(np.float64) - ref_frames.astype(np.float64))
            figures["frames_max_abs_diff"] = _round(float(diff.max()))
            figures["frames_compared_at_decode_chunk"] = chunk
            mse = float((diff**2).mean())
            figures["psnr_db"] = math.inf if mse == 0 else round(10 * math.log10(1 / mse), 2)
        else:
            figures["frames_compared"] = f"no default frames decoded with chunk {chunk}"
        tolerance = _tolerance(device)
        if recipe.name.startswith("fast") and "psnr_db" in figures:
            figures["within_tolerance"] = (
                figures["frames_max_abs_diff"] <= tolerance["max_abs"]
                if device == "cpu"
                else figures["psnr_db"] >= tolerance["psnr_db"]
            )
            figures["tolerance"] = tolerance
    if recipe.name.startswith("fast") and ctx.option("clip", True):
        t0 = time.perf_counter()
        probe.reset()
        probe.call(image, call, steps=CLIP_STEPS)
        figures["clip_s"] = round(time.perf_counter() - t0, 3)
        figures["clip_peak_memory_mb"] = memory.peak_mb()
        # The few-step option (animatelcm-svd-xt): a distilled UNet of the same shape, 4
        # steps without guidance (one UNet pass a step); random weights time it the same.
        t0 = time.perf_counter()
        probe.reset()
        few = {**call, "min_guidance_scale": 1.0, "max_guidance_scale": 1.0}
        probe.call(image, few, steps=FEW_STEPS)
        figures["few_step_clip_s"] = round(time.perf_counter() - t0, 3)
        figures["few_step_s"] = _round(probe.step_seconds())
    del pipe, probe
    if recipe.compile:
        torch._dynamo.reset()
    figures["recipe_s"] = round(time.perf_counter() - started, 2)
    return figures


def _tolerance(device: str) -> dict[str, float]:
    from vidgen_pipeline.core import recipes

    if device == "cpu":
        return {"max_abs": recipes.FAST_MAX_ABS_DIFF_CPU}
    return {"psnr_db": recipes.FAST_MIN_PSNR_DB_CUDA}


class _Probe:
    """Calls the pipeline and times its steps (gaps between step ends) and its VAE decode;
    keeps the latents handed to the decoder. Adds no hooks inside the UNet (a compiled UNet
    would trace them)."""

    def __init__(self, pipe, device: str):
        self.pipe = pipe
        self.device = device
        self.reset()
        inner = pipe.decode_latents  # the recipe's decode-chunk override, if any

        def decode_latents(latents, num_frames, decode_chunk_size=14):
            self.latents = latents.detach().clone()
            self._sync()
            t0 = time.perf_counter()
            try:
                return inner(latents, num_frames, decode_chunk_size)
            finally:
                self._sync()
                self.decode_s = time.perf_counter() - t0
                self.decode_chunk = self._chunk_used(decode_chunk_size)

        pipe.decode_latents = decode_latents

    def _chunk_used(self, asked: int) -> int:
        from vidgen_pipeline.core import recipes

        applied = recipes.applied_recipe(self.pipe)
        if applied is not None and "decode_chunk" in applied.done:
            for note in applied.notes:
                if note.startswith("decode chunk "):
                    return int(note.split()[-1])
        return asked

    def reset(self) -> None:
        self.ends: list[float] = []
        self.latents = None
        self.decode_s = None
        self.decode_chunk = None

    def _sync(self) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()

    def call(self, image, call: dict, steps: int) -> np.ndarray:
        import torch

        def on_step_end(_pipe, _step, _timestep, callback_kwargs):
            self._sync()
            self.ends.append(time.perf_counter())
            return callback_kwargs

        generator = torch.Generator("cpu").manual_seed(SEED)
        out = self.pipe(
            image,
            num_inference_steps=steps,
            generator=generator,
            output_type="np",
            callback_on_step_end=on_step_end,
            **call,
        )
        return np.asarray(out.frames[0], dtype=np.float32)

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.ends, self.ends[1:], strict=False)]

    def step_seconds(self) -> float | None:
        gaps = self.gaps()
        return statistics.median(gaps) if gaps else None


class _Memory:
    """Peak memory: CUDA allocations on a GPU; the process's peak RSS on the CPU (reset
    through /proc/self/clear_refs where Linux allows it)."""

    def __init__(self, device: str):
        self.device = device
        self.resettable = device == "cuda" or Path("/proc/self/clear_refs").exists()
        if device == "cuda":
            self.kind = "cuda max allocated"
        elif self.resettable:
            self.kind = "process peak RSS"
        else:
            self.kind = "process peak RSS since start"

    def reset(self) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.reset_peak_memory_stats()
            return
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            self.resettable = False
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


def _capture_unet_call(unet) -> dict[str, Any]:
    """Keep the arguments of the UNet's first call (to count its FLOPs afterwards)."""
    import torch

    captured: dict[str, Any] = {}

    def hook(_module, args, kwargs):
        if "args" not in captured:

            def keep(x):
                return x.detach().clone() if isinstance(x, torch.Tensor) else x

            captured["args"] = tuple(keep(a) for a in args)
            captured["kwargs"] = {k: keep(v) for k, v in kwargs.items()}

    captured["handle"] = unet.register_forward_pre_hook(hook, with_kwargs=True)
    return captured


def _count_flops(unet, captured: dict[str, Any]) -> float | None:
    """FLOPs of one UNet call (one denoising step, both guidance halves)."""
    if "args" not in captured:
        return None
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        unet(*captured["args"], **captured["kwargs"])
    return float(counter.get_total_flops())


def _decode_sweep(pipe, latents, call, reference, device, ctx) -> list[dict[str, Any]]:
    """Decode the default recipe's latents with several chunk sizes: the seconds and memory
    of each, and the reference frames the other recipes are compared with."""
    import torch

    frames = call["num_frames"]
    chunks = set(FULL_SWEEP if device == "cuda" else TINY_SWEEP)
    chunks.add(call["decode_chunk_size"])
    for name in ctx.option("recipes", DEFAULT_RECIPES):
        from vidgen_pipeline.core import recipes

        chunk = recipes.get_recipe(name).decode_chunk_size
        if chunk:
            chunks.add(chunk)
    effective = sorted({min(c, frames) for c in chunks})
    decode = type(pipe).decode_latents.__get__(pipe)  # the plain one, no override
    rows = []
    for chunk in effective:
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
        t0 = time.perf_counter()
        with torch.no_grad():
            video = decode(latents, frames, chunk)
            if device == "cuda":
                torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        row = {"chunk": chunk, "seconds": round(seconds, 3)}
        if device == "cuda":
            row["extra_peak_mb"] = round((torch.cuda.max_memory_allocated() - before) / 2**20, 1)
        rows.append(row)
        array = pipe.video_processor.postprocess_video(video=video, output_type="np")[0]
        reference["frames"][chunk] = np.asarray(array, dtype=np.float32)
    base = reference["frames"].get(min(call["decode_chunk_size"], frames))
    for row in rows:
        other = reference["frames"][row["chunk"]]
        if base is not None:
            row["max_abs_diff_vs_call_chunk"] = _round(float(np.abs(other - base).max()))
    return rows


def _ratios(data: dict[str, Any]) -> None:
    base = data["recipes"].get("default", {})
    for figures in data["recipes"].values():
        if "step_s" not in figures:
            continue
        flops = data.get("flops_per_step")
        if flops and figures["step_s"]:
            achieved = flops / figures["step_s"] / 1e12
            figures["tflops"] = _round(achieved, 4)
            figures["peak_share"] = _round(achieved / PEAK_TFLOPS, 4)
        for label, field in (("step", "step_s"), ("clip", "clip_s_est")):
            if base.get(field) and figures.get(field):
                figures[f"speedup_{label}"] = round(base[field] / figures[field], 3)


def _free(device: str) -> None:
    gc.collect()
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()


def _round(value: float | None, digits: int = 6) -> float | None:
    if value is None:
        return None
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, max(0, digits - 1 - math.floor(math.log10(abs(value)))))


def _test_image(width: int, height: int):
    """A smooth deterministic picture (gradients and a disc), the same for every recipe."""
    from PIL import Image

    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    red = xs / max(1, width - 1)
    green = ys / max(1, height - 1)
    disc = ((xs - width * 0.6) ** 2 + (ys - height * 0.45) ** 2) < (min(width, height) * 0.2) ** 2
    blue = np.where(disc, 0.9, 0.2)
    rgb = np.stack([red, green, np.broadcast_to(blue, red.shape)], axis=-1)
    return Image.fromarray((rgb * 255).round().astype(np.uint8))


# ------------------------------------------------------------------------------ markdown


def _title(tiny: bool) -> str:
    if tiny:
        return "GPU section, --tiny on the CPU (code check; not GPU figures)"
    return "GPU: SVD-XT recipes, full size, random weights"


def _markdown(data: dict[str, Any], tiny: bool) -> str:
    parts: list[str] = []
    size = f"{data['frames']} frames at {data['height']}x{data['width']}"
    params = data.get("parameters", {})
    total = sum(params.values()) if params else 0
    parts.append(
        f"{'Tiny' if tiny else 'Full-size'} SVD-XT with random weights "
        f"({total / 1e6:.1f} M parameters: "
        + ", ".join(f"{k} {v / 1e6:.1f} M" for k, v in params.items())
        + f"), {size}, device {data['device']}; per recipe one warm-up call, then "
        f"{data['steps_timed']} timed steps (seed {data['seed']}), the caller asking for "
        f"decode chunk {data['call_decode_chunk']}."
    )
    if tiny:
        parts.append(
            "These tiny-model figures only show that the code runs; "
            "the H200 figures come from `vidgen_pipeline/bench/gpu_device_check.sh`."
        )
    header = [
        "recipe",
        "s/step",
        "x default (step)",
        "s/clip 25 steps (est.)",
        "x default (clip)",
        "VAE decode s (chunk)",
        "warm-up s",
        "peak memory MB",
        "TFLOP/s",
        "% of 989",
        "latents max abs diff",
        "frames max abs diff",
        "PSNR dB",
    ]
    rows = []
    notes = []
    for name, f in data["recipes"].items():
        if "skipped" in f or "error" in f:
            rows.append([name, f.get("skipped") or f.get("error")] + ["-"] * (len(header) - 2))
            continue
        share = f.get("peak_share")
        chunk = f.get("decode_chunk")
        rows.append(
            [
                f"**{name}**",
                f.get("step_s"),
                f.get("speedup_step"),
                f.get("clip_s_est"),
                f.get("speedup_clip"),
                f"{fmt(f.get('decode_s'))} ({chunk})",
                f.get("warmup_s"),
                f.get("peak_memory_mb"),
                f.get("tflops"),
                None if share is None else fmt(100 * share),
                f.get("latent_max_abs_diff"),
                f.get("frames_max_abs_diff"),
                "identical" if f.get("psnr_db") == math.inf else f.get("psnr_db"),
            ]
        )
        line = f"- **{name}**: {f['summary']}. Applied: {'; '.join(f['notes'])}."
        if not f.get("finite", True):
            line += " Output has NaN/inf values."
        if "within_tolerance" in f:
            tol = ", ".join(f"{k} {v:g}" for k, v in f["tolerance"].items())
            line += f" Within the stated tolerance ({tol}): {f['within_tolerance']}."
        if "clip_s" in f:
            line += (
                f" A real {CLIP_STEPS}-step clip: {fmt(f['clip_s'])} s "
                f"(peak {fmt(f.get('clip_peak_memory_mb'))} MB)."
            )
        if "few_step_clip_s" in f:
            line += (
                f" Few-step option (animatelcm-svd-xt's shape: {FEW_STEPS} steps, no guidance): "
                f"{fmt(f['few_step_clip_s'])} s a clip, {fmt(f.get('few_step_s'))} s a step."
            )
        notes.append(line)
    parts.append(markdown_table(header, rows))
    kind = next(
        (f.get("peak_memory_kind") for f in data["recipes"].values() if "peak_memory_kind" in f),
        None,
    )
    flops = data.get("flops_per_step")
    if flops:
        floor = flops * CLIP_STEPS / (PEAK_TFLOPS * 1e12)
        parts.append(
            f"UNet FLOPs per step (both guidance halves, counted with `FlopCounterMode`): "
            f"{fmt(flops / 1e12)} TFLOP; a {CLIP_STEPS}-step clip {fmt(flops * CLIP_STEPS / 1e15)}"
            f" PFLOP, {fmt(floor)} s at {PEAK_TFLOPS:g} TFLOP/s. Peak memory is {kind}. "
            "Frames are compared with the default recipe's latents decoded with the same "
            "decode chunk; latents directly."
        )
    parts.append("\n".join(notes))
    sweep = data.get("decode_sweep")
    if sweep:
        rows = [
            [
                s["chunk"],
                s["seconds"],
                s.get("extra_peak_mb"),
                s.get("max_abs_diff_vs_call_chunk"),
            ]
            for s in sweep
        ]
        parts.append(
            "VAE decode chunk sweep (default recipe's latents; SVD's temporal decoder mixes "
            "the frames of a chunk, so the chunk changes the frames; with random weights, a lot):\n\n"
            + markdown_table(
                ["decode chunk", "seconds", "extra peak MB", "max abs diff vs caller's chunk"],
                rows,
            )
        )
    return "\n\n".join(parts)
