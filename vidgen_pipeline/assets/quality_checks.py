"""The picture-quality checks shared by ``scene_clips`` and ``final_video``: not blank, not
frozen, no flicker, each with every clip's (or the video's) figures in its metadata.
Thresholds live in ``core/quality.py``."""

from collections.abc import Iterator

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, MetadataValue

from vidgen_pipeline.assets.partitioned import Verdict, check_result
from vidgen_pipeline.core.quality import QualityReport
from vidgen_pipeline.core.sound import probe_audio

QUALITY_CHECKS = [
    ("not_blank", "Fails when frames are black or flat (mean luma, luma spread per frame)."),
    ("not_frozen", "Warns when the picture does not move (frame differences per second)."),
    ("no_flicker", "Warns when brightness jumps from frame to frame (temporal flicker score)."),
]

# check name -> (the report's verdict, the word its problem lines start with, figures)
_FIGURES = {
    "not_blank": (
        "is_blank",
        "blank",
        ("mean_luma", "luma_std", "min_frame_luma_std", "blank_share"),
    ),
    "not_frozen": (
        "is_frozen",
        "frozen",
        ("mean_abs_frame_diff", "still_share", "near_identical_share"),
    ),
    "no_flicker": ("flickers", "flickers", ("flicker_score",)),
}


def quality_specs(asset: str) -> list[AssetCheckSpec]:
    """The three checks' specs on ``asset``."""
    return [AssetCheckSpec(name, asset=asset, description=text) for name, text in QUALITY_CHECKS]


def quality_verdicts(reports: dict[str, QualityReport]) -> dict[str, Verdict]:
    """The three quality verdicts of one partition, from one report per clip (or video),
    each with every clip's figures."""
    verdicts = {}
    for check, (flag, word, keys) in _FIGURES.items():
        problems = [
            f"{name}: {line}"
            for name, report in reports.items()
            if getattr(report, flag)
            for line in report.problems()
            if line.startswith(word)
        ]
        verdicts[check] = Verdict(
            passed=not problems,
            description="; ".join(problems) or None,
            metadata={
                name: MetadataValue.json({k: report.as_metadata()[k] for k in keys})
                for name, report in reports.items()
            },
        )
    return verdicts


def quality_results(verdicts: dict[str, dict[str, Verdict]]) -> Iterator[AssetCheckResult]:
    """One result per check for the step, from ``{partition: quality_verdicts(...)}``:
    ``not_blank`` fails the check (error), the other two warn."""
    for name, _ in QUALITY_CHECKS:
        severity = AssetCheckSeverity.ERROR if name == "not_blank" else AssetCheckSeverity.WARN
        yield check_result(name, {key: v[name] for key, v in verdicts.items()}, severity)


AUDIO_TRACK_SPEC = AssetCheckSpec(
    "one_audio_track",
    asset="final_video",
    description="With sound: exactly one AAC stream, as long as the video within one frame; "
    "a video without sound has no audio stream.",
)


def audio_track_verdict(path, duration_s: float, fps: float, has_sound: bool) -> Verdict:
    """The ``one_audio_track`` verdict of the finished mp4 at ``path``."""
    facts = probe_audio(path)
    off_s = abs(facts.duration_s - duration_s)
    if has_sound:
        passed = facts.codecs == ["aac"] and off_s <= 1.0 / fps + 1e-6
    else:
        passed = not facts.codecs
    return Verdict(
        passed=passed,
        metadata={
            "audio_streams": MetadataValue.json(facts.codecs),
            "audio_s": round(facts.duration_s, 4),
            "video_s": round(duration_s, 4),
            "off_by_s": round(off_s, 4) if facts.codecs else None,
        },
    )
