"""`vidgen`: make videos from the shell, through the same Dagster assets and instance as the UI.

    vidgen generate "A red fox in fresh snow. It looks at the camera." --duration 8

prints progress per step on standard error and the final mp4's absolute path as the last
line of standard output. A failure prints one line on standard error and exits non-zero.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Sequence

EXIT_USAGE = 2
EXIT_FAILED = 1


class UserError(Exception):
    """Bad input: reported as one line, no traceback."""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"cannot be negative, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other user error
        self.exit(EXIT_USAGE, f"vidgen: {message} (see vidgen {self.prog.split()[-1]} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="vidgen", description="Text prompts to multi-scene videos.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    gen = commands.add_parser("generate", help="make one video from a prompt")
    gen.add_argument("prompt", help="what the video should show (any language)")
    gen.add_argument(
        "--video-model",
        metavar="NAME_OR_PATH",
        help="auto (default), svd-xt, svd, animatelcm-svd-xt, modelscope-t2v, animatediff, "
        "animatic, a hub id or a local folder",
    )
    gen.add_argument("--keyframe-model", metavar="NAME_OR_PATH", help="cards (default)")
    gen.add_argument(
        "--keyframe-steps", type=_positive_int, metavar="N", help="text-to-image denoising steps"
    )
    gen.add_argument("--script-model", metavar="NAME_OR_PATH", help="rules (default)")
    gen.add_argument("--device", choices=["auto", "cpu", "cuda"])
    gen.add_argument("--steps", type=_positive_int, metavar="N", help="denoising steps")
    gen.add_argument("--frames", type=_positive_int, metavar="N", help="frames per generated clip")
    gen.add_argument("--width", type=_positive_int, metavar="W")
    gen.add_argument("--height", type=_positive_int, metavar="H")
    gen.add_argument("--fps", type=_positive_float, metavar="N")
    gen.add_argument("--seed", type=int, metavar="N")
    gen.add_argument("--scenes", type=int, metavar="N", help="number of scenes")
    gen.add_argument("--duration", type=float, metavar="SECONDS", help="target length (default 8)")
    gen.add_argument("--style", help="cinematic (default), documentary, anime, watercolor, none")
    gen.add_argument(
        "--sample", type=int, default=0, help="sample index: another take of the prompt"
    )
    post = gen.add_argument_group("finishing (frame rate, transitions, encoding)")
    post.add_argument(
        "--interpolate",
        type=int,
        choices=range(1, 5),
        metavar="N",
        help="frame-rate multiplier by optical flow, 1..4 (1: none; default: up to 24 fps)",
    )
    post.add_argument("--output-fps", type=_positive_float, metavar="N", help="final video rate")
    post.add_argument("--transition", choices=["cut", "crossfade"], help="between scenes")
    post.add_argument(
        "--transition-seconds", type=_non_negative_float, metavar="S", help="crossfade length"
    )
    post.add_argument("--fade", type=_non_negative_float, metavar="S", help="fade in and out")
    post.add_argument(
        "--crf", type=int, choices=range(0, 52), metavar="N", help="x264 quality 0..51 (18)"
    )
    post.add_argument("--bitrate", metavar="RATE", help="e.g. 5000k: average bitrate, not CRF")
    gen.add_argument(
        "--allow-download",
        action="store_true",
        help="download missing weights from the Hugging Face hub (default: fail with the command)",
    )
    gen.set_defaults(func=generate)

    add = commands.add_parser(
        "add-prompts",
        help="register a prompt dataset (CSV, TSV, Parquet, JSONL, TXT) as partitions",
    )
    add.add_argument("files", nargs="+", metavar="FILE")
    add.set_defaults(func=add_prompts)

    back = commands.add_parser(
        "backfill",
        help="make the videos of registered partitions, several prompts per run",
    )
    back.add_argument(
        "--missing",
        action="store_true",
        help="only partitions without a final video, or whose request changed since",
    )
    back.add_argument("--limit", type=_positive_int, metavar="N", help="at most N partitions")
    back.add_argument(
        "--per-run",
        type=_positive_int,
        metavar="N",
        help="partitions per run, each model loaded once per run (default: "
        "VIDGEN_PARTITIONS_PER_RUN or 8)",
    )
    back.add_argument(
        "--partition", action="append", metavar="KEY", help="only this partition (repeatable)"
    )
    back.set_defaults(func=backfill)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from vidgen_pipeline.instance import SetupError

    try:
        return args.func(args)
    except (UserError, SetupError) as exc:
        print(f"vidgen: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("vidgen: interrupted", file=sys.stderr)
        return 130


def _request_from_args(args: argparse.Namespace):
    from pydantic import ValidationError

    from vidgen_pipeline.core.requests import (
        GenerationSettings,
        PromptError,
        PromptRequest,
        normalize_prompt,
    )

    try:
        normalize_prompt(args.prompt)
    except PromptError as exc:
        raise UserError(str(exc)) from None
    try:
        settings = GenerationSettings(
            style=args.style,
            duration_s=args.duration,
            scenes=args.scenes,
            seed=args.seed,
            script_model=args.script_model,
            keyframe_model=args.keyframe_model,
            keyframe_steps=args.keyframe_steps,
            video_model=args.video_model,
            device=args.device,
            steps=args.steps,
            frames=args.frames,
            width=args.width,
            height=args.height,
            fps=args.fps,
            output_fps=args.output_fps,
            interpolate=args.interpolate,
            transition=args.transition,
            transition_s=args.transition_seconds,
            fade_s=args.fade,
            crf=args.crf,
            bitrate=args.bitrate,
        )
        return PromptRequest(text=args.prompt, sample=args.sample, settings=settings)
    except ValidationError as exc:
        raise UserError(describe_validation_error(exc)) from None


def describe_validation_error(exc) -> str:
    """``field: problem; field: problem`` from a pydantic ``ValidationError``."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}" for err in exc.errors()
    )


def validate_request(request, resources: dict):
    """Everything that can be checked before a run starts (fail fast, in one line)."""
    from vidgen_pipeline.core.models import ModelChoiceError
    from vidgen_pipeline.core.prompts import STYLE_PRESETS

    settings = request.settings
    if settings.style and settings.style not in STYLE_PRESETS:
        raise UserError(f"unknown style {settings.style!r}; known: {', '.join(STYLE_PRESETS)}")
    from vidgen_pipeline.core.postprod import PostprodError
    from vidgen_pipeline.core.storyboard import write_storyboard

    try:
        resources["script_writer"].check(settings.script_model or resources["script_writer"].model)
        plan = resources["video_generator"].plan(settings, resources["keyframe_generator"])
        # The finishing settings, against the rule-based storyboard's scenes (an LLM's
        # scenes may differ; the run clamps again and notes it).
        board = write_storyboard(request.text, settings.duration_s, settings.scenes)
        durations = [scene.duration_s for scene in board.scenes]
        resources["post_production"].plan(settings, durations, plan.fps, plan.backend != "animatic")
        return plan
    except (ModelChoiceError, PostprodError) as exc:
        raise UserError(str(exc)) from None


def generate(args: argparse.Namespace) -> int:
    if args.allow_download:
        os.environ["VIDGEN_ALLOW_DOWNLOAD"] = "1"
    request = _request_from_args(args)
    from vidgen_pipeline.instance import prepare_home

    home = prepare_home()  # a bad database URL or object store: one line, before any work
    from vidgen_pipeline.definitions import defs

    plan = validate_request(request, defs.resources)
    _say(f"video model: {plan.model} ({plan.reason}); keyframes: {plan.keyframe_model}")

    from dagster import DagsterInstance

    from vidgen_pipeline.batch import reap_dead_runs
    from vidgen_pipeline.jobs import register_prompt
    from vidgen_pipeline.resources import PromptStoreResource

    with DagsterInstance.get() as instance:
        for run_id in reap_dead_runs(instance):
            _say(f"run {run_id} had died (killed?); marked failed, its GPU slot freed")
        key, is_new = register_prompt(request, PromptStoreResource(), instance)
        _say(f"{'added' if is_new else 'updated'} partition {key} (VIDGEN_HOME={home})")
        result, failure = _execute(defs, instance, {"vidgen/source": "cli"}, partition_key=key)
        if failure:
            print(f"vidgen: {failure}", file=sys.stderr)
            return EXIT_FAILED
        paths = _final_paths(result)
        if not paths:
            raise UserError("the run succeeded but recorded no final_video")
    print(paths[key])
    return 0


def _execute(defs, instance, tags: dict, partition_key: str | None = None):
    """Run `generate_video` in this process with progress on stderr; (result, failure)."""
    from dagster._core.utils import make_new_run_id

    from vidgen_pipeline.batch import process_tags

    job = defs.resolve_job_def("generate_video")
    run_id = make_new_run_id()
    progress = _Progress(instance, run_id)
    progress.start()
    try:
        result = job.execute_in_process(
            instance=instance,
            partition_key=partition_key,
            run_id=run_id,
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
            tags={**tags, **process_tags()},
        )
    finally:
        progress.stop()
    if result.success:
        return result, None
    return result, f"run {run_id} failed: {progress.failure or 'see the run in the UI'}"


def _final_paths(result) -> dict[str, str]:
    """The final mp4 of each partition the run materialized."""
    return {
        event.partition: str(event.materialization.metadata["path"].value)
        for event in result.get_asset_materialization_events()
        if event.asset_key.to_user_string() == "final_video"
    }


def add_prompts(args: argparse.Namespace) -> int:
    """Register every good row of the files; report bad rows with file and line."""
    from pathlib import Path

    from dagster import DagsterInstance

    from vidgen_pipeline.batch import register_requests
    from vidgen_pipeline.core.datasets import read_dataset
    from vidgen_pipeline.core.requests import PromptStore
    from vidgen_pipeline.core.storage import default_prompt_store_path
    from vidgen_pipeline.instance import prepare_home

    results = []
    for name in args.files:
        path = Path(name)
        if not path.is_file():
            raise UserError(f"{name}: no such file")
        result = read_dataset(path)
        for problem in result.problems:
            _say(f"{problem.severity}: {problem}")
        results.append(result)
    requests = [request for result in results for request in result.requests]
    if not requests:
        raise UserError("no usable rows (see the problems above)")
    prepare_home()
    with DagsterInstance.get() as instance:
        registration = register_requests(
            requests, PromptStore(default_prompt_store_path()), instance
        )
    rows = sum(r.rows for r in results)
    errors = sum(len(r.errors) for r in results)
    duplicates = sum(r.duplicates for r in results)
    _say(
        f"{rows} rows, {len(requests)} requests ({duplicates} duplicates merged, {errors} "
        f"problems): {len(registration.new)} new partitions, {len(registration.changed)} "
        f"changed, {registration.unchanged} unchanged"
    )
    _say("make their videos with: vidgen backfill --missing (or from the UI)")
    print(len(registration.new))
    return 0


def backfill(args: argparse.Namespace) -> int:
    """Make the videos of many partitions: runs of --per-run partitions each, so every model
    loads once per run; prints each finished mp4's path on stdout."""
    from dagster import DagsterInstance

    from vidgen_pipeline.assets.partitioned import partitions_per_run
    from vidgen_pipeline.batch import outdated_partitions, range_tags, reap_dead_runs, run_batches
    from vidgen_pipeline.core.requests import PromptStore
    from vidgen_pipeline.core.storage import default_prompt_store_path, default_storage_path
    from vidgen_pipeline.definitions import defs
    from vidgen_pipeline.instance import prepare_home
    from vidgen_pipeline.partitions import PROMPTS

    prepare_home()
    with DagsterInstance.get() as instance:
        for run_id in reap_dead_runs(instance):
            _say(f"run {run_id} had died (killed?); marked failed, its GPU slot freed")
        ordered = list(instance.get_dynamic_partitions(PROMPTS))
        targets = ordered
        if args.partition:
            unknown = [key for key in args.partition if key not in set(ordered)]
            if unknown:
                raise UserError(f"unknown partitions: {', '.join(unknown)}")
            targets = [key for key in ordered if key in set(args.partition)]
        if args.missing:
            store = PromptStore(default_prompt_store_path())
            targets = outdated_partitions(instance, store, default_storage_path(), targets)
        targets = targets[: args.limit] if args.limit else targets
        if not targets:
            _say(
                "nothing to do: no partitions" + (" without a final video" if args.missing else "")
            )
            return 0
        batches = run_batches(ordered, targets, args.per_run or partitions_per_run())
        _say(f"{len(targets)} partitions in {len(batches)} runs")
        failed: list[str] = []
        queue = [(batch, f"run {n}/{len(batches)}") for n, batch in enumerate(batches, 1)]
        while queue:
            batch, label = queue.pop(0)
            _say(f"{label}: {len(batch)} partitions ({batch[0]} .. {batch[-1]})")
            tags = {"vidgen/source": "cli-backfill", **range_tags(batch)}
            result, failure = _execute(defs, instance, tags)
            if not failure:
                for path in _final_paths(result).values():
                    print(path, flush=True)
            elif len(batch) > 1:
                # One bad prompt fails its whole run: make the others one at a time.
                _say(f"vidgen: {failure}; running its {len(batch)} partitions one by one")
                queue = [([key], f"  {key}") for key in batch] + queue
            else:
                _say(f"vidgen: {batch[0]}: {failure}")
                failed.append(batch[0])
    if failed:
        print(
            f"vidgen: {len(failed)} of {len(targets)} partitions failed: {', '.join(failed)}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return 0


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class _Progress(threading.Thread):
    """Reads the run's event log and prints one line per step event and log message."""

    def __init__(self, instance, run_id: str):
        super().__init__(daemon=True)
        self.instance, self.run_id = instance, run_id
        self.failure: str | None = None
        self._seen = 0
        self._done = threading.Event()
        self._step_started: dict[str, float] = {}

    def run(self) -> None:
        while not self._done.wait(0.3):
            self._drain()

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=5)
        self._drain()

    def _drain(self) -> None:
        try:
            entries = self.instance.all_logs(self.run_id)
        except Exception:  # noqa: BLE001  the run may not exist yet; progress is best effort
            return
        for entry in entries[self._seen :]:
            self._print(entry)
        self._seen = len(entries)

    def _print(self, entry) -> None:
        step = entry.step_key or "run"
        event = entry.dagster_event
        if event is None:
            if entry.level >= 20:  # INFO and above: what the assets say about their work
                _say(f"  [{step}] {entry.user_message}")
            return
        kind = event.event_type_value
        if kind == "STEP_START":
            self._step_started[step] = entry.timestamp
            _say(f"[{step}] started")
        elif kind == "STEP_SUCCESS":
            took = entry.timestamp - self._step_started.get(step, entry.timestamp)
            _say(f"[{step}] done in {took:.1f} s")
        elif kind == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            if not data.passed:
                severity = data.severity.value.lower()
                note = f": {data.description}" if data.description else ""
                _say(f"  [{step}] check {data.check_name} did not pass ({severity}){note}")
        elif kind == "STEP_FAILURE":
            self.failure = f"step {step}: {_root_message(event.event_specific_data.error)}"
            _say(f"[{step}] failed")


def _root_message(error) -> str:
    """The innermost cause's message: the user's problem, not Dagster's wrapping of it."""
    while error is not None and error.cause is not None:
        error = error.cause
    if error is None:
        return "unknown error"
    return (error.message or "").strip().splitlines()[-1] if error.message else error.cls_name


if __name__ == "__main__":
    sys.exit(main())
