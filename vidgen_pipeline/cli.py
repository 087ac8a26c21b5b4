"""`vidgen`: make videos from the shell, through the same Dagster assets and instance as the UI.

    vidgen generate "A red fox in fresh snow. It looks at the camera." --duration 8

prints progress per step on standard error and the final mp4's absolute path as the last
line of standard output. A failure prints one line on standard error and exits non-zero.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Sequence
from typing import Literal, get_args, get_origin

from vidgen_pipeline.core.requests import GenerationSettings, settings_fields, value_type
from vidgen_pipeline.core.setting_kinds import Flag
from vidgen_pipeline.run_progress import RunProgress, say

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


# Flag.parse names -> argparse types (named as argparse shows them: "invalid _positive_int
# value: 'abc'").
SETTING_PARSERS = {
    "positive_int": _positive_int,
    "positive_float": _positive_float,
    "non_negative_float": _non_negative_float,
}


def setting_groups(model: type[GenerationSettings] = GenerationSettings) -> list[str]:
    """The titles of the argument groups ``model``'s options go in, in order of appearance."""
    titles = [s.flag.group for _, _, s in settings_fields(model) if s.flag and s.flag.group]
    return list(dict.fromkeys(titles))


def add_setting_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    model: type[GenerationSettings] = GenerationSettings,
    group: str | None = None,
) -> None:
    """An option for each setting of ``model`` whose flag is in ``group`` (``None``: the
    command's own options), in the model's order; its value lands under the field's name."""
    for name, info, setting in settings_fields(model):
        if setting.flag is not None and setting.flag.group == group:
            parser.add_argument(setting.flag.name, dest=name, **_option(info, setting.flag))


def _option(info, flag: Flag) -> dict:
    kind, repeatable = value_type(info)
    if kind is bool:  # a flag: given means True, absent means the resource's default
        return {"action": "store_true", "default": None, "help": flag.help}
    option = {"metavar": flag.metavar, "help": flag.help}
    parse = SETTING_PARSERS[flag.parse] if flag.parse else kind if kind in (int, float) else None
    if parse is not None:
        option["type"] = parse
    choices = flag.choices or (get_args(kind) if get_origin(kind) is Literal else None)
    if choices is not None:
        option["choices"] = choices
    if repeatable:
        option["action"] = "append"
    return option


def settings_from_args(
    args: argparse.Namespace, model: type[GenerationSettings] = GenerationSettings
) -> GenerationSettings:
    """``model`` from the options ``add_setting_options`` added (pydantic's checks apply)."""
    values = {name: getattr(args, name) for name, _, s in settings_fields(model) if s.flag}
    return model(**values)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other user error
        self.exit(EXIT_USAGE, f"vidgen: {message} (see vidgen {self.prog.split()[-1]} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="vidgen", description="Text prompts to multi-scene videos.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    gen = commands.add_parser("generate", help="make one video from a prompt")
    gen.add_argument("prompt", help="what the video should show (any language)")
    add_setting_options(gen)
    gen.add_argument(
        "--sample", type=int, default=0, help="sample index: another take of the prompt"
    )
    for title in setting_groups():
        add_setting_options(gen.add_argument_group(title), group=title)
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

    models = commands.add_parser(
        "models",
        help="the registry's video models: what they take, native output, VRAM estimate, "
        "the languages their text encoder reads, whether their weights are here",
    )
    models.set_defaults(func=list_models)
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

    from vidgen_pipeline.core.requests import PromptError, PromptRequest, normalize_prompt

    try:
        normalize_prompt(args.prompt)
    except PromptError as exc:
        raise UserError(str(exc)) from None
    try:
        settings = settings_from_args(args)
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
    from vidgen_pipeline.core.finishing.inputs import FinishingError
    from vidgen_pipeline.core.storyboard import write_storyboard

    try:
        resources["script_writer"].check(settings.script_model or resources["script_writer"].model)
        plan = resources["video_generator"].plan(settings, resources["keyframe_generator"])
        # The finishing settings, against the rule-based storyboard's scenes (an LLM's
        # scenes may differ; the run clamps again and notes it).
        board = write_storyboard(request.text, settings.duration_s, settings.scenes)
        durations = [scene.duration_s for scene in board.scenes]
        resources["finishing"].plan(settings, durations, plan.fps, plan.backend != "animatic")
        if settings.narration:  # a voice there is, and a model folder that can be used
            resources["narrator"].voice(settings.voice_model, board.language)
        return plan
    except (ModelChoiceError, FinishingError) as exc:
        raise UserError(str(exc)) from None


def generate(args: argparse.Namespace) -> int:
    if args.allow_download:
        os.environ["VIDGEN_ALLOW_DOWNLOAD"] = "1"
    request = _request_from_args(args)
    from vidgen_pipeline.instance import prepare_home

    home = prepare_home()  # a bad database URL or object store: one line, before any work
    from vidgen_pipeline.core.images import with_stored_image
    from vidgen_pipeline.core.models import ModelChoiceError
    from vidgen_pipeline.core.music import with_stored_music
    from vidgen_pipeline.definitions import defs

    try:
        request = with_stored_image(request)  # the CLI reads the file its user names
        request = with_stored_music(request)
    except ModelChoiceError as exc:
        raise UserError(str(exc)) from None
    plan = validate_request(request, defs.resources)
    say(f"video model: {plan.model} ({plan.reason}); keyframes: {plan.keyframe_model}")

    from dagster import DagsterInstance

    from vidgen_pipeline.batch import reap_dead_runs
    from vidgen_pipeline.jobs import register_prompt
    from vidgen_pipeline.resources import PromptStoreResource

    with DagsterInstance.get() as instance:
        for run_id in reap_dead_runs(instance):
            say(f"run {run_id} had died (killed?); marked failed, its GPU slot freed")
        key, is_new = register_prompt(request, PromptStoreResource(), instance)
        say(f"{'added' if is_new else 'updated'} partition {key} (VIDGEN_HOME={home})")
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
    from vidgen_pipeline.batch import process_tags

    job = defs.resolve_job_def("generate_video")
    run_id = str(uuid.uuid4())  # Dagster's run ids are uuid4s; known here so progress can follow it
    progress = RunProgress(instance, run_id)
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
            say(f"{problem.severity}: {problem}")
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
    say(
        f"{rows} rows, {len(requests)} requests ({duplicates} duplicates merged, {errors} "
        f"problems): {len(registration.new)} new partitions, {len(registration.changed)} "
        f"changed, {registration.unchanged} unchanged"
    )
    say("make their videos with: vidgen backfill --missing (or from the UI)")
    print(len(registration.new))
    return 0


def backfill(args: argparse.Namespace) -> int:
    """Make the videos of many partitions: runs of --per-run partitions each, so every model
    loads once per run; prints each finished mp4's path on stdout."""
    from dagster import DagsterInstance

    from vidgen_pipeline.assets.partitioned import partitions_per_run
    from vidgen_pipeline.batch import (
        outdated_partitions,
        range_tags,
        reap_dead_runs,
        run_batches,
        run_retrying_alone,
    )
    from vidgen_pipeline.core.requests import PromptStore
    from vidgen_pipeline.core.storage import default_prompt_store_path, default_storage_path
    from vidgen_pipeline.definitions import defs
    from vidgen_pipeline.instance import prepare_home
    from vidgen_pipeline.partitions import PROMPTS

    prepare_home()
    with DagsterInstance.get() as instance:
        for run_id in reap_dead_runs(instance):
            say(f"run {run_id} had died (killed?); marked failed, its GPU slot freed")
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
            say("nothing to do: no partitions" + (" without a final video" if args.missing else ""))
            return 0
        batches = run_batches(ordered, targets, args.per_run or partitions_per_run())
        say(f"{len(targets)} partitions in {len(batches)} runs")

        def run_one(batch: list[str]) -> str | None:
            tags = {"vidgen/source": "cli-backfill", **range_tags(batch)}
            result, failure = _execute(defs, instance, tags)
            if not failure:
                for path in _final_paths(result).values():
                    print(path, flush=True)
            return failure

        failed = run_retrying_alone(batches, run_one, say)
    if failed:
        print(
            f"vidgen: {len(failed)} of {len(targets)} partitions failed: {', '.join(failed)}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return 0


def list_models(args: argparse.Namespace) -> int:
    """One line per registry model; weights are looked for offline, as a run would."""
    from vidgen_pipeline.families.registry import model_rows

    header = ("name", "family", "takes", "native output", "VRAM", "reads", "sound", "weights")
    rows = [
        (r.name, r.family, r.kind, r.output, f"~{r.vram_gb:g} GB" if r.vram_gb else "-")
        + (r.languages, r.sound, r.weights)
        for r in model_rows()
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        print(
            "  ".join(str(cell).ljust(width) for cell, width in zip(row[:-1], widths, strict=True))
            + "  "
            + row[-1]
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
