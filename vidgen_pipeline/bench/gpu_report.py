"""The GPU section's markdown: per model its size, parameters, counted FLOPs and physical
floor, a table of the recipes, what each recipe applied, and the issue's aims (met, missed, or
not measured and why)."""

from __future__ import annotations

import math
from typing import Any

from vidgen_pipeline.bench.common import PEAK_TFLOPS, fmt, markdown_table

GUIDANCE_PASSES = 2  # both DiTs run classifier-free guidance: two passes' work a step
NO_GPU = "not measured: no GPU was lent (the figures here are tiny models on the CPU)"

HEADER = [
    "recipe",
    "s/step",
    "x default (step)",
    "s/clip (est.)",
    "x default (clip)",
    "x floor",
    "VAE decode s",
    "warm-up s",
    "peak memory MB",
    "TFLOP/s",
    "% of 989",
    "max abs diff",
    "PSNR dB",
]


def title(tiny: bool) -> str:
    if tiny:
        return "GPU section, --tiny on the CPU (code check; not GPU figures)"
    return "GPU: Wan 2.1 T2V 1.3B and LTX-Video under each recipe, full size, random weights"


def markdown(data: dict[str, Any]) -> str:
    """The whole section's text from its JSON data."""
    tiny = data["size"] == "tiny"
    parts = [_intro(data, tiny)]
    for name, entry in data["models"].items():
        parts.append(_model(name, entry, tiny))
    parts.append(
        "Columns: s/step is the median gap between step ends of the timed call; s/clip "
        "(est.) is the clip's steps x s/step + the VAE decode; x default is default's figure "
        "over the recipe's (above 1: faster); x floor is s/clip over the floor at "
        f"{PEAK_TFLOPS:g} TFLOP/s; the difference is of the decoded frames (in [0, 1]) from "
        "default's, same seed and inputs. For `cache` it is its measured cost, and its "
        "few-step timing is not its 50-step average (a step cache skips more in later steps)."
    )
    return "\n\n".join(parts)


def _intro(data: dict[str, Any], tiny: bool) -> str:
    what = (
        f"Device {data['device']}; per model one pipeline of random weights placed in each "
        "recipe by `resources.placement.place`; per recipe one warm-up call of "
        f"{data['warmup_steps']} steps, then {data['steps_timed']} timed steps; time budget "
        f"{data['budget_s']:.0f} s (recipes past it are skipped with the reason)."
    )
    if tiny:
        what += (
            " These tiny-model figures only show that the code runs; the H200 figures come "
            "from `vidgen_pipeline/bench/gpu_device_check.sh`. No GPU was lent to the session "
            "that wrote this, so every aim below is not measured. The full-size FLOPs and "
            "floors are counted on the meta device from the published configs (no memory)."
        )
    return what


def _model(name: str, entry: dict[str, Any], tiny: bool) -> str:
    head = f"### {name}"
    if "frames" in entry:
        head += (
            f": {entry['frames']} frames at {entry['height']}x{entry['width']}, "
            f"{entry['clip_steps']} steps a clip"
        )
    if "skipped" in entry or "error" in entry:
        return f"{head}\n\nNot measured: {entry.get('skipped') or entry.get('error')}."
    lines = [head, _sizes(entry), _flops(entry)]
    lines.append(markdown_table(HEADER, [_row(n, f) for n, f in entry["recipes"].items()]))
    lines.append("\n".join(_notes(entry["recipes"])))
    aims = _aims(name, entry, tiny)
    if aims:
        lines.append("Aims (issue 12):\n\n" + "\n".join(aims))
    return "\n\n".join(line for line in lines if line)


def _sizes(entry: dict[str, Any]) -> str:
    params = entry.get("parameters", {})
    counts = ", ".join(f"{k} {fmt(v / 1e6)} M" for k, v in params.items())
    return f"Parameters: {counts}; built in {fmt(entry.get('build_s'))} s."


def _flops(entry: dict[str, Any]) -> str:
    found = []
    if entry.get("flops_per_step"):
        found.append(
            f"Counted on one call of default's denoiser (`FlopCounterMode`): "
            f"{fmt(entry['flops_per_call'] / 1e12)} TFLOP a call x "
            f"{fmt(entry['passes_per_step'])} calls a step = "
            f"{fmt(entry['flops_per_step'] / 1e12)} TFLOP a step; floor of one clip "
            f"{fmt(entry.get('floor_s'))} s at {PEAK_TFLOPS:g} TFLOP/s."
        )
    meta = entry.get("full_pass_flops_meta")
    if meta:
        floor = meta * GUIDANCE_PASSES * entry["clip_steps"] / PEAK_TFLOPS / 1e12
        stated = entry.get("stated_floor_s")
        found.append(
            f"Full size, counted on the meta device: {fmt(meta / 1e12)} TFLOP a transformer "
            f"pass, {GUIDANCE_PASSES} passes a step: physical floor {fmt(floor)} s a clip on "
            f"an H200" + (f" (issue 12: about {fmt(stated)} s)." if stated else ".")
        )
    return " ".join(found)


def _row(name: str, f: dict[str, Any]) -> list[Any]:
    if "skipped" in f or "error" in f:
        reason = f.get("skipped") or f.get("error")
        return [f"**{name}**", reason] + ["-"] * (len(HEADER) - 2)
    share = f.get("peak_share")
    psnr = f.get("psnr_db")
    return [
        f"**{name}**",
        f.get("step_s"),
        f.get("speedup_step"),
        f.get("clip_s_est"),
        f.get("speedup_clip"),
        f.get("x_floor"),
        f.get("decode_s"),
        f.get("warmup_s"),
        f.get("peak_memory_mb"),
        f.get("tflops"),
        None if share is None else fmt(100 * share),
        f.get("max_abs_diff"),
        "identical" if psnr == math.inf else psnr,
    ]


def _notes(found: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    for name, f in found.items():
        if "notes" not in f:
            continue
        line = f"- **{name}**: {f['summary']}. Applied: {'; '.join(f['notes'])}."
        if not f.get("finite", True):
            line += " Output has NaN/inf values."
        if "within_tolerance" in f:
            tolerance = ", ".join(f"{k} {v:g}" for k, v in f["tolerance"].items())
            line += f" Within the stated tolerance ({tolerance}): {f['within_tolerance']}."
        if f.get("steps_cut"):
            line += f" {f['steps_cut']}."
        line += f" Peak memory: {f.get('peak_memory_kind')}."
        lines.append(line)
    return lines


def _aims(name: str, entry: dict[str, Any], tiny: bool) -> list[str]:
    from vidgen_pipeline.bench.gpu_models import MODELS

    lines = []
    for aim in MODELS[name].aims:
        if tiny:
            lines.append(f"- {aim.label}: {NO_GPU}.")
            continue
        measured = {r: entry["recipes"].get(r, {}) for r in aim.recipes}
        values = {r: f[aim.field] for r, f in measured.items() if f.get(aim.field) is not None}
        if not values:
            why = "; ".join(
                f"{r}: {f.get('skipped') or f.get('error') or 'not run'}"
                for r, f in measured.items()
            )
            lines.append(f"- {aim.label}: not measured ({why}).")
            continue
        best = min(values, key=values.get)
        verdict = "met" if values[best] <= aim.limit else "missed"
        lines.append(f"- {aim.label}: {best} {fmt(values[best])} ({aim.field}): {verdict}.")
    return lines
