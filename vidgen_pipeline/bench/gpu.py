"""The GPU section: today's diffusion transformers with random weights under each speed recipe.

Full size (CUDA): ``wan2.1-t2v-1.3b`` (480x832, 81 frames, 50 guided steps a clip: two
transformer passes a step) and ``ltx-video`` (512x768, 121 frames, 40 guided steps), built from
their published configs (``bench.dit_configs``); ``--models svd-xt`` adds SVD-XT. ``--tiny`` (or
no CUDA): the package's tiny builders on the CPU, the same code, in seconds.

Per model, one pipeline with one set of random weights is placed in each recipe in turn by
``resources.placement.place`` (which undoes the last recipe first). Per recipe: one warm-up
call of ``WARMUP_STEPS`` steps (where ``torch.compile`` pays: reported), then one timed call of
a few steps with the same seed. Reported: seconds per step (median gap between step ends), the
VAE decode on its own, peak memory, an estimated clip (the clip's steps x step + decode), the
ratio to ``default``, FLOPs per step (one pass of ``default`` counted with ``FlopCounterMode``,
times the passes a step) as a share of the H200's 989 TFLOP/s, and the difference of the
decoded frames from ``default``'s. The section keeps to a time budget: a recipe that would end
past its model's share is skipped with the reason, and every result is saved as it comes.
"""

from __future__ import annotations

import gc
import math
import time
from dataclasses import dataclass, replace
from typing import Any

from vidgen_pipeline.bench.common import PEAK_TFLOPS, BenchContext, SectionResult
from vidgen_pipeline.bench.gpu_models import DEFAULT_MODELS, MODELS, BenchModel
from vidgen_pipeline.bench.gpu_probe import Memory, PassRecorder, Probe, frame_difference
from vidgen_pipeline.bench.gpu_report import markdown, title

# default first (everything is compared with it); fast last of the compiled ones: its warm-up
# is the long unknown, and what ran before it is saved by then.
DEFAULT_RECIPES = ("default", "low_memory", "cache", "fast")
STEPS = 3
WARMUP_STEPS = 2  # two: a step cache decides from the second step on
FULL_BUDGET_S = 420.0  # the section on one H200: 8 minutes with imports, builds, the last recipe
TINY_BUDGET_S = 300.0
# A compiled recipe's first warm-up before one was measured (Inductor on a DiT block and a
# VAE decoder on an H200; Dynamo tracing only on the CPU).
COMPILE_GUESS_S = {"full": 120.0, "tiny": 10.0}


@dataclass(frozen=True)
class Run:
    """What the section was asked for, resolved."""

    tiny: bool
    device: str
    models: tuple[BenchModel, ...]
    recipes: tuple[str, ...]
    steps: int
    budget_s: float
    cpu_compile: bool  # --tiny: compiled recipes trace with Dynamo's eager backend
    cache_threshold: float | None  # the step cache's; None: the family's default

    @property
    def size(self) -> str:
        return "tiny" if self.tiny else "full"


def gpu_section(ctx: BenchContext) -> SectionResult:
    """Measure each model under each recipe; save after every recipe."""
    import torch

    run = _resolve(ctx, tiny=ctx.tiny or not torch.cuda.is_available())
    started = time.perf_counter()
    data: dict[str, Any] = {
        "size": run.size,
        "device": run.device,
        "steps_timed": run.steps,
        "warmup_steps": WARMUP_STEPS,
        "peak_tflops": PEAK_TFLOPS,
        "budget_s": run.budget_s,
        "recipes_asked": list(run.recipes),
        "models": {},
    }
    key = "gpu-tiny" if run.tiny else "gpu"

    def checkpoint(complete: bool = False) -> SectionResult:
        result = SectionResult(key, title(run.tiny), data, markdown(data), complete)
        ctx.checkpoint(result)
        return result

    for index, model in enumerate(run.models):
        elapsed = time.perf_counter() - started
        left = run.budget_s - elapsed
        shares = sum(m.budget_share for m in run.models[index:])
        deadline = started + elapsed + max(0.0, left) * model.budget_share / shares
        entry: dict[str, Any] = {"recipes": {}}
        data["models"][model.name] = entry
        if left <= 0:
            entry["skipped"] = f"time budget ({run.budget_s:.0f} s) spent"
            continue
        _measure_model(model, run, entry, deadline, ctx, checkpoint)
    data["seconds"] = round(time.perf_counter() - started, 1)
    return checkpoint(complete=True)


def _resolve(ctx: BenchContext, tiny: bool) -> Run:
    steps = int(ctx.option("steps", STEPS))
    if not 2 <= steps <= 10:
        raise ValueError("steps must be 2..10 (per-step figures come from the gaps between steps)")
    names = [n for n in ctx.option("models", DEFAULT_MODELS)]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise ValueError(f"unknown model {unknown[0]!r}; known: {', '.join(MODELS)}")
    recipes = [r for r in ctx.option("recipes", DEFAULT_RECIPES) if r != "default"]
    budget = ctx.option("budget_s", TINY_BUDGET_S if tiny else FULL_BUDGET_S)
    return Run(
        tiny=tiny,
        device="cpu" if tiny else "cuda",
        models=tuple(MODELS[n] for n in names),
        recipes=("default", *recipes),
        steps=steps,
        budget_s=float(budget),
        cpu_compile=bool(ctx.option("cpu_compile", False)),
        cache_threshold=ctx.option("cache_threshold"),
    )


# --------------------------------------------------------------------------------- one model


def _measure_model(model: BenchModel, run: Run, entry, deadline: float, ctx, checkpoint) -> None:
    """Build ``model`` once, count its full-size pass on the meta device, then each recipe."""
    from vidgen_pipeline.bench.dit_configs import parameter_counts
    from vidgen_pipeline.bench.gpu_models import build, full_pass_flops

    size = model.size(run.tiny)
    entry.update(
        height=size.height, width=size.width, frames=size.frames, clip_steps=size.clip_steps
    )
    entry["stated_floor_s"] = model.stated_floor_s
    ctx.log(f"gpu: building {run.size} {model.name} with random weights")
    started = time.perf_counter()
    try:
        pipe = build(model, run.tiny, run.device)
        entry["build_s"] = round(time.perf_counter() - started, 2)
        entry["full_pass_flops_meta"] = full_pass_flops(model)
    except Exception as exc:  # noqa: BLE001  a model that does not build must not stop the rest
        entry["error"] = _error(exc)
        checkpoint()
        return
    entry["parameters"] = parameter_counts(pipe)
    reference: dict[str, Any] = {}
    broken = None  # why the recipes left are not run
    for name in run.recipes:
        if broken:
            entry["recipes"][name] = {"skipped": broken}
            continue
        figures = _recipe_within_budget(pipe, model, name, run, entry, deadline, reference, ctx)
        entry["recipes"][name] = figures
        if "reset_error" in figures:
            broken = f"undoing {name} failed ({figures['reset_error']})"
        if name == "default" and "error" in figures:
            broken = "default failed: nothing to compare with"
        elif name == "default":
            entry.update({k: v for k, v in reference.items() if k != "frames"})
        _ratios(entry)
        checkpoint()
    del pipe, reference
    _free(run.device)


def _recipe_within_budget(pipe, model, name, run, entry, deadline, reference, ctx) -> dict:
    """Measure recipe ``name`` unless it would end after ``deadline`` (then a reason)."""
    import torch

    from vidgen_pipeline.core import recipes
    from vidgen_pipeline.resources import placement

    recipe = recipes.get_recipe(name)
    done = entry["recipes"]
    estimate = _estimate(recipe, done, run)
    left = deadline - time.perf_counter()
    if name != "default" and estimate > left:
        return {
            "skipped": f"time budget: {left:.0f} s left of this model's share, needs ~{estimate:.0f} s"
        }
    steps = run.steps if left >= 2 * estimate or name == "default" else 2
    ctx.log(f"gpu: {model.name} recipe {name} ({steps} timed steps)")
    started = time.perf_counter()
    try:
        figures = _measure_recipe(pipe, model, recipe, run, steps, reference)
    except Exception as exc:  # noqa: BLE001  one recipe failing must not lose the others
        figures = {"error": _error(exc)}
    try:
        placement.reset(pipe)
    except Exception as exc:  # noqa: BLE001  reported; the model's later recipes are not run
        figures["reset_error"] = _error(exc)
    if recipe.compiles:
        torch._dynamo.reset()
    _free(run.device)
    figures["recipe_s"] = round(time.perf_counter() - started, 2)
    if steps < run.steps:
        figures["steps_cut"] = f"{steps} timed steps: the budget was short"
    return figures


def _estimate(recipe, done: dict[str, dict], run: Run) -> float:
    """Seconds recipe ``recipe`` is expected to take, from what this model's recipes took. A
    second compiled recipe is expected to pay half the first one's warm-up (Inductor's
    on-disk graph cache serves the blocks they share)."""
    from vidgen_pipeline.core import recipes

    def alike(name: str) -> bool:
        return recipes.get_recipe(name).compiles == recipe.compiles

    measured = [
        f for name, f in done.items() if "recipe_s" in f and "warmup_s" in f and alike(name)
    ]
    if measured:
        if not recipe.compiles:
            return max(f["recipe_s"] for f in measured)
        return max(f["recipe_s"] - 0.5 * f["warmup_s"] for f in measured)
    plain = done.get("default", {}).get("recipe_s", 0.0)
    compiles = recipe.compiles and (not run.tiny or run.cpu_compile)
    return plain + (COMPILE_GUESS_S[run.size] if compiles else 0.0)


# -------------------------------------------------------------------------------- one recipe


def _measure_recipe(pipe, model, recipe, run: Run, steps: int, reference: dict) -> dict:
    """Place ``pipe`` in ``recipe``, warm it up, time ``steps`` steps; compare with default."""
    notes = _place(pipe, model, recipe, run)
    size = model.size(run.tiny)
    arguments = model.inputs(pipe, size, run.device)
    probe, memory = Probe(pipe, run.device), Memory(run.device)
    # 1. warm-up (compilation happens here); default also counts its passes and their FLOPs
    recorder = PassRecorder(_denoiser(pipe)) if recipe.name == "default" else None
    started = time.perf_counter()
    probe.call(arguments, WARMUP_STEPS, decode=recipe.compiles)  # only a compiled VAE warms up
    warmup_s = time.perf_counter() - started
    if recorder is not None:
        recorder.remove()
        reference["passes_per_step"] = recorder.calls / WARMUP_STEPS
        reference["flops_per_call"] = recorder.flops()
    # 2. the timed call
    memory.reset()
    started = time.perf_counter()
    frames = probe.call(arguments, steps)
    call_s = time.perf_counter() - started
    step_s, decode_s = probe.step_seconds(), probe.decode_s
    from vidgen_pipeline.core import recipes

    figures: dict[str, Any] = {
        "summary": recipe.summary,
        "notes": notes,
        "settings": recipes.describe(recipe),
        "warmup_s": round(warmup_s, 3),
        "call_s": round(call_s, 3),
        "steps_timed": steps,
        "step_s": _round(step_s),
        "step_s_all": [round(s, 5) for s in probe.gaps()],
        "decode_s": _round(decode_s),
        "clip_s_est": _round(size.clip_steps * step_s + decode_s) if step_s else None,
        "peak_memory_mb": memory.peak_mb(),
        "peak_memory_kind": memory.kind,
        "finite": bool(frames.size and _finite(frames)),
    }
    figures.update(_compare(recipe.name, frames, reference, run.device))
    return figures


def _place(pipe, model: BenchModel, recipe, run: Run) -> list[str]:
    """The one placement function, as a run calls it, in the recipe's own memory mode and
    dtype; components the family keeps in another dtype (Wan's fp32 VAE) are cast after."""
    import torch

    from vidgen_pipeline.families.registry import VIDEO_MODELS
    from vidgen_pipeline.resources import placement

    family = VIDEO_MODELS[model.name].family_module
    if run.tiny and run.cpu_compile and recipe.compiles:
        recipe = replace(recipe, compile_on_cpu=True, compile_backend="eager")
    cache = family.step_cache(run.cache_threshold) if recipe.step_cache else None
    mode = placement.mode_of(recipe)
    notes = placement.place(pipe, mode, run.device, recipe, dtype=recipe.dtype, step_cache=cache)
    if run.device == "cuda" and recipe.dtype:
        for name, dtype in family.component_dtypes(recipe.dtype).items():
            component = getattr(pipe, name, None)
            if component is not None:
                component.to({"fp32": torch.float32, "bf16": torch.bfloat16}.get(dtype))
                notes.append(f"{name} in {dtype} (the family's)")
    return notes


def _denoiser(pipe):
    from vidgen_pipeline.resources import speedups

    return speedups.denoisers(pipe)[0][1]


def _compare(name: str, frames, reference: dict, device: str) -> dict[str, Any]:
    """Default keeps its frames as the reference; the others report their difference (for
    ``cache`` its measured cost) and ``fast`` whether it keeps the stated tolerance."""
    from vidgen_pipeline.core import recipes

    if name == "default":
        reference["frames"] = frames
        return {"max_abs_diff": 0.0, "psnr_db": math.inf}
    if "frames" not in reference:
        return {}
    found = frame_difference(frames, reference["frames"])
    found["max_abs_diff"] = _round(found["max_abs_diff"])
    if name.startswith("fast"):
        if device == "cpu":
            tolerance = {"max_abs": recipes.FAST_MAX_ABS_DIFF_CPU}
            found["within_tolerance"] = found["max_abs_diff"] <= tolerance["max_abs"]
        else:
            tolerance = {"psnr_db": recipes.FAST_MIN_PSNR_DB_CUDA}
            found["within_tolerance"] = found["psnr_db"] >= tolerance["psnr_db"]
        found["tolerance"] = tolerance
    return found


def _ratios(entry: dict[str, Any]) -> None:
    """FLOPs per step, the floor, and each recipe's share of the peak and ratio to default."""
    found = entry["recipes"]
    base = found.get("default", {})
    flops_call, passes = entry.get("flops_per_call"), entry.get("passes_per_step")
    if flops_call and passes:
        entry["flops_per_step"] = flops_call * passes
        entry["floor_s"] = _round(
            entry["flops_per_step"] * entry["clip_steps"] / PEAK_TFLOPS / 1e12
        )
    for figures in found.values():
        step = figures.get("step_s")
        if not step:
            continue
        if entry.get("flops_per_step"):
            achieved = entry["flops_per_step"] / step / 1e12
            figures["tflops"] = _round(achieved, 4)
            figures["peak_share"] = _round(achieved / PEAK_TFLOPS, 4)
        if entry.get("floor_s") and figures.get("clip_s_est"):
            figures["x_floor"] = _round(figures["clip_s_est"] / entry["floor_s"], 4)
        for label, field in (("step", "step_s"), ("clip", "clip_s_est")):
            if base.get(field) and figures.get(field):
                figures[f"speedup_{label}"] = round(base[field] / figures[field], 3)


# ----------------------------------------------------------------------------------- helpers


def _finite(frames) -> bool:
    import numpy as np

    return bool(np.isfinite(frames).all())


def _error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"


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
