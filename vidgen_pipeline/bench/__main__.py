"""``python -m vidgen_pipeline.bench [--section cpu|gpu|all] [--tiny] [--out PATH]
[--json PATH] [--models a,b] [--recipes a,b] [--steps N] [--budget SECONDS]
[--cache-threshold X] [--cpu-compile]``"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vidgen_pipeline.bench.harness import DEFAULT_MARKDOWN, copy_section, run
from vidgen_pipeline.bench.sections import SECTIONS


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m vidgen_pipeline.bench",
        description="Measure the pipeline; write JSON and a markdown section per run.",
    )
    parser.add_argument(
        "--section",
        default="all",
        choices=[*SECTIONS, "all"],
        help="all: every section; gpu runs --tiny on the CPU when there is no CUDA GPU",
    )
    parser.add_argument("--tiny", action="store_true", help="gpu: tiny models on the CPU")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_MARKDOWN, help="markdown file (its section only)"
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="JSON file (default VIDGEN_HOME/bench/benchmarks.json)",
    )
    parser.add_argument(
        "--models",
        default=None,
        help="gpu: comma-separated models (wan2.1-t2v-1.3b, ltx-video, svd-xt); "
        "default the first two",
    )
    parser.add_argument("--recipes", default=None, help="gpu: comma-separated recipe names")
    parser.add_argument("--steps", type=int, default=None, help="gpu: timed steps (2-10)")
    parser.add_argument(
        "--budget", type=float, default=None, help="gpu: seconds before recipes are skipped"
    )
    parser.add_argument(
        "--cache-threshold", type=float, default=None, help="gpu: the step cache's threshold"
    )
    parser.add_argument(
        "--cpu-compile",
        action="store_true",
        help="gpu --tiny: trace the compiled recipes with Dynamo (eager backend) on the CPU",
    )
    parser.add_argument(
        "--prompts",
        type=int,
        default=None,
        help="cpu: prompts to register; scheduling: prompts to backfill (100)",
    )
    parser.add_argument("--runs", type=int, default=None, help="cpu: pipeline runs")
    parser.add_argument(
        "--copy-from",
        type=Path,
        default=None,
        help="measure nothing: copy --section's block from this markdown file into --out "
        "(the benchmarks.md a device machine wrote)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    if args.copy_from is not None:
        keys = [args.section] if args.section != "all" else [*SECTIONS]
        keys += [f"{k}-tiny" for k in keys]
        copied = [k for k in keys if copy_section(args.copy_from, args.out, k)]
        print(f"copied {', '.join(copied) or 'nothing'} into {args.out}")
        return 0 if copied else 1
    options = {
        "models": args.models.split(",") if args.models else None,
        "recipes": args.recipes.split(",") if args.recipes else None,
        "steps": args.steps,
        "budget_s": args.budget,
        "cache_threshold": args.cache_threshold,
        "cpu_compile": args.cpu_compile or None,
        "prompts": args.prompts,
        "pipeline_runs": args.runs,
    }
    run(args.section, args.tiny, args.out, args.json, argv=argv, options=options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
