"""Planning a prompt's video: which model and family, where its weights are, what it takes,
sizes, frames per clip, the call settings; all checked before any heavy work, each refusal one
``ModelChoiceError`` line.

The family module states the rules (``vidgen_pipeline.families``); this module applies them
to the resource's settings and the prompt's overrides. Nothing here loads a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vidgen_pipeline.core.loras import LoraChoice, resolve_lora
from vidgen_pipeline.core.models import (
    DEFAULT_KEYFRAME_MODEL,
    ModelChoiceError,
    VideoPlan,
    check_size,
    looks_like_hub_id,
)
from vidgen_pipeline.core.requests import GenerationSettings
from vidgen_pipeline.core.scene_cache import weights_revision
from vidgen_pipeline.core.weights import (
    ResolvedFile,
    ResolvedWeights,
    WeightsError,
    resolve_file,
    resolve_weights,
)
from vidgen_pipeline.families.base import Family, has_component, read_index
from vidgen_pipeline.families.registry import (
    ANIMATIC,
    AUTO_ORDER,
    VIDEO_MODELS,
    ModelEntry,
    family_for,
)
from vidgen_pipeline.resources import placement, runtime
from vidgen_pipeline.resources.scene_starts import plan_image, plan_keyframes, refuse_image

FALLBACKS = ("fail", "animatic")
DENOISERS = ("unet", "transformer", "transformer_2")


@dataclass
class Choice:
    """The model picked for a prompt: its registry entry (None for a bare folder or hub id),
    its weights, why it was picked, and a few-step model's replacement UNet."""

    label: str
    entry: ModelEntry | None
    weights: ResolvedWeights | None
    reason: str
    unet: ResolvedFile | None = None

    @property
    def is_animatic(self) -> bool:
        return self.entry is not None and self.entry.family == "animatic"


def plan_video(generator, settings: GenerationSettings, keyframes) -> VideoPlan:
    """Resolve model, weights, device and sizes for one prompt (``generator``: the
    ``VideoGenerator`` resource); raise ``ModelChoiceError`` with one line."""
    # 1. check the settings
    generator.check_settings()
    placement.check_recipe(generator.recipe)
    if generator.fallback not in FALLBACKS:
        raise ModelChoiceError(f"unknown fallback {generator.fallback!r}; use fail or animatic")
    name = (settings.video_model or generator.model or "auto").strip()
    if name != "auto":
        _check_name(name)  # before the device: that asks torch (seconds to import)
    device = runtime.resolve_device(settings.device or generator.device)
    dtype, dtype_note = runtime.resolve_dtype(generator.dtype, device)
    notes: list[str] = []
    # 2. choose the model
    precision = runtime.weights_precision(dtype)
    if name == "auto":
        choice = _auto(generator, device, precision, keyframes)
    else:
        known = VIDEO_MODELS.get(name)
        if settings.image and known is not None and known.inputs.image == "none":
            refuse_image(name)  # before looking for its weights
        choice = _named(generator, name, precision, notes)
    if generator.unet_weights and choice.unet is None:
        notes.append(f"unet_weights ignored: {choice.label} has no replacement UNet")
    # 3. the family's rules
    if choice.is_animatic:
        plan = _plan_animatic(generator, settings, device, choice.reason, notes)
    else:
        notes += [dtype_note] if dtype_note else []
        plan = _plan_diffusers(generator, settings, device, dtype, choice, notes)
    # 4. what starts each scene
    plan_image(plan, settings)
    plan_keyframes(plan, settings, keyframes, device)
    return plan


# ----------------------------------------------------------------------------- the model


def _auto(generator, device: str, precision: str, keyframes) -> Choice:
    """On a CUDA GPU the first model of ``AUTO_ORDER`` whose weights are here and whose
    estimate fits the free memory (``pick_auto``); else the animatic, saying why."""
    if device != "cuda":
        reason = "auto: no CUDA GPU, so no diffusion model can run at a useful speed"
        return Choice("animatic", VIDEO_MODELS["animatic"], None, reason)
    found: dict[str, ResolvedWeights] = {}
    for name in AUTO_ORDER:
        entry = VIDEO_MODELS[name]
        try:
            found[name] = _resolve(generator, name, entry, precision, allow_download=False)
            if entry.inputs.image == "required" and keyframes.model == "auto":
                keyframes.resolve(DEFAULT_KEYFRAME_MODEL)
        except ModelChoiceError:
            found.pop(name, None)
    name, reason = pick_auto({n: w.source for n, w in found.items()}, runtime.free_memory_gb())
    if name is None:
        return Choice("animatic", VIDEO_MODELS["animatic"], None, reason)
    return Choice(name, VIDEO_MODELS[name], found[name], reason)


def pick_auto(found: dict[str, str], free_gb: float) -> tuple[str | None, str]:
    """The first of ``AUTO_ORDER`` in ``found`` (name -> where its weights are) whose VRAM
    estimate fits ``free_gb``, and why; (None, why not) when none does."""
    skipped = []
    for name in AUTO_ORDER:
        entry = VIDEO_MODELS[name]
        if name not in found:
            skipped.append(f"{name}: no weights")
        elif entry.vram > free_gb:
            skipped.append(f"{name}: needs ~{entry.vram:g} GB, {free_gb:.0f} GB free")
        else:
            return name, (
                f"auto: {name}, the first of {', '.join(AUTO_ORDER)} whose weights are here "
                f"({found[name]}) and that fits the GPU (~{entry.vram:g} GB of {free_gb:.0f} GB "
                "free)"
            )
    return None, f"auto: a GPU is present but no model fits ({'; '.join(skipped)})"


def _named(generator, name: str, precision: str, notes: list[str]) -> Choice:
    entry = VIDEO_MODELS.get(name)
    if entry is not None and entry.family == "animatic":
        return Choice("animatic", entry, None, "asked for by name")
    try:  # the name itself was checked first, in plan_video
        weights = _resolve(generator, name, entry, precision, generator.allow_download)
        unet = _resolve_unet(generator, entry) if entry is not None and entry.unet else None
    except ModelChoiceError as exc:
        if generator.fallback != "animatic":
            raise
        notes.append(f"fallback to animatic: {exc}")
        return Choice("animatic", VIDEO_MODELS["animatic"], None, f"fallback (configured): {exc}")
    return Choice(entry.name if entry else name, entry, weights, "asked for by name", unet)


def _check_name(name: str) -> None:
    """A registry name, a hub id or a local folder; anything else is one line."""
    if name not in VIDEO_MODELS and not (
        looks_like_hub_id(name) or "/" in name or name.startswith((".", "~"))
    ):
        raise ModelChoiceError(
            f"unknown video model {name!r}; known: {', '.join(VIDEO_MODELS)}, auto, "
            "a hub id (org/name) or a local folder"
        )


def _resolve(generator, name: str, entry: ModelEntry | None, precision: str, allow_download):
    hub_id = entry.hub_id if entry else (name if looks_like_hub_id(name) else None)
    try:
        return resolve_weights(
            "video",
            name,
            hub_id,
            (entry.base or entry.name) if entry else None,
            allow_download,
            generator.allow_unsafe_weights,
            precision=precision,
            half_variant=entry.half_variant if entry else False,
        )
    except WeightsError as exc:
        base = f"{entry.name} runs on {entry.base}'s pipeline: " if entry and entry.base else ""
        raise ModelChoiceError(f"{base}{exc}") from None


def _resolve_unet(generator, entry: ModelEntry) -> ResolvedFile:
    """A few-step model's replacement UNet file: ``unet_weights``, else
    ``VIDGEN_HOME/models/<name>/<file>``, the hub cache, or a download when allowed."""
    try:
        return resolve_file(
            "video",
            entry.name,
            entry.unet.hub_id,
            entry.unet.filename,
            generator.unet_weights,
            generator.allow_download,
        )
    except WeightsError as exc:
        raise ModelChoiceError(str(exc)) from None


def _loras(generator, settings, entry, pipeline: str, steps: int, native) -> list[dict]:
    """The LoRAs on the denoiser: a few-step entry's own, then the prompt's ``lora`` (or,
    without one, the resource's ``loras``); each a safetensors file, found before anything
    loads."""
    wanted = list(settings.lora if settings.lora is not None else generator.loras)
    found: list[dict] = []
    if entry is not None and entry.lora is not None:
        _distilled_steps(entry, "LoRA", entry.lora.steps, steps, native)
        try:
            file = resolve_file(
                "video",
                entry.name,
                entry.lora.hub_id,
                entry.lora.filename,
                "",
                generator.allow_download,
            )
        except WeightsError as exc:
            raise ModelChoiceError(str(exc)) from None
        choice = LoraChoice(entry.lora.filename, str(file.path), 1.0, file.source, file.revision)
        found.append(choice.as_plan())
    if (wanted or found) and not _takes_loras(pipeline):
        raise ModelChoiceError(f"{pipeline} does not load LoRAs (no load_lora_weights)")
    for text in wanted:
        try:
            choice = resolve_lora(text, generator.allow_download)
        except WeightsError as exc:
            raise ModelChoiceError(str(exc)) from None
        revision = choice.revision or weights_revision(choice.path)
        found.append({**choice.as_plan(), "revision": revision})
    return found


def _takes_loras(pipeline: str) -> bool:
    import diffusers

    return hasattr(getattr(diffusers, pipeline, None), "load_lora_weights")


# ------------------------------------------------------------------------------ families


def _plan_animatic(generator, settings, device, reason, notes) -> VideoPlan:
    native = ANIMATIC.native
    width = int(settings.width or generator.width or native.width)
    height = int(settings.height or generator.height or native.height)
    fps = float(settings.fps or generator.fps or native.fps)
    check_size(width, height, fps, multiple=ANIMATIC.size_multiple)
    for label, value in (
        ("steps", settings.steps or generator.steps),
        ("frames", settings.frames or generator.frames),
    ):
        if value:
            notes.append(f"{label}={value} ignored: the animatic backend has no {label} setting")
    return VideoPlan(
        model="animatic",
        reason=reason,
        backend="animatic",
        family="animatic",
        pipeline="animatic",
        conditioning="none",
        image_input="optional",
        device=device,
        width=width,
        height=height,
        fps=fps,
        size_multiple=ANIMATIC.size_multiple,
        keyframe_model="cards",
        notes=notes,
    )


def _family_of(choice: Choice) -> tuple[Family, str]:
    """The family and pipeline class of a chosen folder (an SD base plus a motion adapter
    is an AnimateDiff pipeline)."""
    pipeline = choice.weights.pipeline_class
    if choice.entry is not None and choice.entry.motion_adapter:
        if pipeline == "StableDiffusionPipeline":
            pipeline = "AnimateDiffPipeline"
    try:
        family = family_for(pipeline)
    except ModelChoiceError as exc:
        raise ModelChoiceError(f"{choice.weights.path}: {exc}") from None
    return family, pipeline


def _plan_diffusers(generator, settings, device, dtype, choice: Choice, notes) -> VideoPlan:
    family, pipeline = _family_of(choice)
    entry, weights = choice.entry, choice.weights
    folder = Path(weights.path)
    expects = tuple(entry.denoisers) if entry and entry.denoisers else ()
    family.check_folder(folder, weights.pipeline_class, expects)
    index = read_index(folder)
    inputs = family.inputs(pipeline, folder)
    native = entry.output if entry else family.native
    multiple, rule = family.rules(folder)
    width, height, fps = _size(generator, settings, family, pipeline, folder, native, notes)
    check_size(width, height, fps, multiple, f"{family.name} ({pipeline})")
    family.check_size(folder, width, height)
    frames = _frames_per_clip(generator, settings, native, rule, notes)
    steps = int(settings.steps or generator.steps or native.steps)
    plan = VideoPlan(
        model=choice.label,
        reason=choice.reason,
        backend="diffusers",
        family=family.name,
        pipeline=pipeline,
        conditioning=inputs.kind,
        takes_text=inputs.text,
        image_input=inputs.image,
        image_pipeline=family.pipeline_for(pipeline, folder, with_image=True),
        text_pipeline=family.pipeline_for(pipeline, folder, with_image=False),
        weights_path=str(weights.path),
        weights_source=weights.source,
        weights_revision=weights.revision,
        weights_variant=weights.variant_for(dtype),
        motion_adapter_path=_adapter(generator, entry, weights, runtime.weights_precision(dtype)),
        denoisers=[c for c in DENOISERS if has_component(index, c)],
        component_dtypes=family.component_dtypes(dtype) if device == "cuda" else {},
        call_options={
            **family.defaults(pipeline, width, height),
            **family.folder_options(pipeline, folder),
            **(entry.call_options if entry else {}),
            **family.resource_options(generator),
        },
        languages=list(family.languages),
        text_encoder=family.text_encoder,
        token_limit=family.token_limit,
        prompt_style=family.prompt_style,
        negative_prompt=family.negative_prompt,
        size_multiple=multiple,
        frame_rule=_rule_fields(rule),
        device=device,
        dtype=dtype,
        memory_mode=generator.memory_mode if device == "cuda" else "cpu",
        vram_gb=entry.vram if entry else family.vram_gb,
        width=width,
        height=height,
        fps=fps,
        steps=steps,
        frames_per_clip=frames,
        continuity=generator.continuity and inputs.image != "none",
        notes=notes,
    )
    _few_step(plan, entry, choice.unet, steps, native)
    plan.loras = _loras(generator, settings, entry, pipeline, steps, native)
    return plan


def _size(generator, settings, family, pipeline, folder, native, notes):
    width = int(settings.width or generator.width or native.width)
    height = int(settings.height or generator.height or native.height)
    fps = float(settings.fps or generator.fps or native.fps)
    fitted = family.fit_size(pipeline, folder, width, height)
    if fitted != (width, height):
        notes.append(
            f"size {width}x{height} -> {fitted[0]}x{fitted[1]}: {pipeline} makes the size of "
            "its bucket nearest that aspect ratio"
        )
        width, height = fitted
    return width, height, fps


def _frames_per_clip(generator, settings, native, rule, notes) -> int:
    """Frames per generated clip: the setting or the native count, raised to the next count
    the model can make (lowered to its longest)."""
    asked = int(settings.frames or generator.frames or native.frames)
    legal = rule.at_least(asked)
    if legal != asked:
        notes.append(
            f"frames {asked} -> {legal}: this model makes {rule.describe()} frames per clip"
        )
    return legal


def _rule_fields(rule) -> dict:
    return {
        "step": rule.step,
        "offset": rule.offset,
        "minimum": rule.minimum,
        "maximum": rule.maximum,
    }


def _adapter(
    generator, entry: ModelEntry | None, weights: ResolvedWeights, precision: str
) -> str | None:
    """The motion adapter folder, when a base text-to-image model runs with one: from the
    cache, or (downloads allowed) its config and weights in one precision, nothing else."""
    if entry is None or not entry.motion_adapter:
        return None
    if weights.pipeline_class == "AnimateDiffPipeline":
        return None  # the folder holds its adapter already
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    from vidgen_pipeline.core.weights import download_snapshot, downloads_allowed

    try:
        try:
            return snapshot_download(entry.motion_adapter, local_files_only=True)
        except LocalEntryNotFoundError:
            if not downloads_allowed(generator.allow_download):
                raise
            # A model folder, read as one: its config.json and one precision's safetensors.
            return download_snapshot(entry.motion_adapter, "transformers", precision, False)
    except (LocalEntryNotFoundError, OSError, ValueError) as exc:
        raise ModelChoiceError(
            f"motion adapter {entry.motion_adapter} for {entry.name} is not here "
            f"({type(exc).__name__}); fetch it with: hf download {entry.motion_adapter}"
        ) from None


def _distilled_steps(entry, what: str, span: tuple[int, int], steps: int, native) -> None:
    low, high = span
    if not low <= steps <= high:
        raise ModelChoiceError(
            f"steps {steps} is outside {low}..{high}: {entry.name}'s {what} was distilled "
            f"for {low}-{high} steps (default {native.steps})"
        )


def _few_step(plan: VideoPlan, entry, unet: ResolvedFile | None, steps: int, native) -> None:
    """A distilled UNet's file, scheduler and step range."""
    if unet is None:
        return
    _distilled_steps(entry, "UNet", entry.unet.steps, steps, native)
    plan.unet_weights_path = str(unet.path)
    plan.unet_weights_source = unet.source
    plan.unet_weights_revision = unet.revision or weights_revision(str(unet.path))
    plan.scheduler = entry.unet.scheduler
    plan.scheduler_config = dict(entry.unet.scheduler_config)
