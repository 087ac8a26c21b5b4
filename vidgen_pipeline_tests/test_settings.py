"""One description of a request: the CLI options, the Launchpad config and the dataset
columns all come from the ``Setting`` on each field of ``GenerationSettings``. A throwaway
model with a path, a repeatable list and a yes/no setting shows that a new setting is added
in one place and works on all three."""

import argparse
from typing import Annotated

import pytest
from dagster import op

from vidgen_pipeline.cli import add_setting_options, setting_groups, settings_from_args
from vidgen_pipeline.core.dataset_columns import aliases, columns, read_settings, setting_columns
from vidgen_pipeline.core.datasets import COLUMNS
from vidgen_pipeline.core.requests import (
    Column,
    Flag,
    GenerationSettings,
    Setting,
    settings_fields,
)
from vidgen_pipeline.jobs import AddPromptConfig, launchpad_config

EXTRAS = "extras (throwaway settings of this test)"


class Extended(GenerationSettings):
    """GenerationSettings with three settings of the kinds still to come."""

    start_image: Annotated[
        str | None,
        Setting(
            flag=Flag("--start-image", "PATH", "the first scene's start", group=EXTRAS),
            launchpad=True,
            column=Column("start_image", aliases=("first_frame",), cell="path"),
        ),
    ] = None
    adapters: Annotated[
        list[str] | None,
        Setting(
            flag=Flag("--adapter", "PATH_OR_HUB_ID[:SCALE]", "repeatable", group=EXTRAS),
            launchpad=True,
            column=Column("adapters"),
        ),
    ] = None
    voiceover: Annotated[
        bool | None,
        Setting(flag=Flag("--voiceover", help="speak the scenes"), column=Column("voiceover")),
    ] = None


def parser_for(model) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="t", exit_on_error=False)
    add_setting_options(parser, model)
    for title in setting_groups(model):
        add_setting_options(parser.add_argument_group(title), model, group=title)
    return parser


def test_a_path_a_list_and_a_flag_reach_the_settings_from_the_command_line(tmp_path):
    image = tmp_path / "start.png"
    parser = parser_for(Extended)
    args = parser.parse_args(
        ["--adapter", "lora.safetensors:0.8", "--adapter", "org/fast", "--voiceover"]
        + ["--start-image", str(image), "--steps", "3"]
    )
    settings = settings_from_args(args, Extended)
    assert settings.adapters == ["lora.safetensors:0.8", "org/fast"]
    assert settings.voiceover is True and settings.start_image == str(image)
    assert settings.steps == 3
    untouched = settings_from_args(parser.parse_args([]), Extended)
    assert untouched.adapters is None and untouched.voiceover is None  # the resource decides
    assert untouched == Extended()
    text = parser.format_help()
    assert "--adapter PATH_OR_HUB_ID[:SCALE]" in text and "--voiceover " in text
    assert "--start-image PATH" in text.split(EXTRAS)[1]  # in its own argument group
    with pytest.raises(argparse.ArgumentError, match="must be at least 1"):
        parser.parse_args(["--steps", "0"])


ExtendedPromptConfig = launchpad_config(Extended, name="ExtendedPromptConfig")


@op
def add_extended(config: ExtendedPromptConfig) -> str:
    return config.prompt


def test_a_new_setting_appears_in_the_launchpad_config_with_its_type():
    fields = add_extended.config_schema.config_type.fields
    assert set(fields) == {"prompt", "start_image", "adapters"} | set(AddPromptConfig.model_fields)
    assert "voiceover" not in fields  # launchpad=False keeps it off
    assert fields["adapters"].config_type.key == "Noneable.Array.StringSourceType"
    config = ExtendedPromptConfig(prompt="A fox.", adapters=["a.safetensors"], start_image="x.png")
    request = config.to_request()
    assert request.settings.adapters == ["a.safetensors"]
    assert request.settings.start_image == "x.png"


def test_a_new_setting_is_a_dataset_column_read_by_its_kind(tmp_path):
    image = tmp_path / "start.png"
    image.write_bytes(b"png")
    names = [column for column, _, _ in setting_columns(Extended)]
    assert names[-3:] == ["start_image", "adapters", "voiceover"]
    assert set(columns(Extended)) == set(COLUMNS) | {"start_image", "adapters", "voiceover"}
    assert aliases(Extended) == {"duration_s": "duration", "first_frame": "start_image"}
    errors: list[str] = []
    row = {"start_image": str(image), "adapters": "a.safetensors:0.8; org/fast", "voiceover": "yes"}
    settings = read_settings({**row, "seed": "4"}, errors, Extended)
    assert errors == []
    assert settings == {
        "start_image": str(image),
        "adapters": ["a.safetensors:0.8", "org/fast"],
        "voiceover": True,
        "seed": 4,
    }
    assert read_settings({"adapters": ["x", "y"], "voiceover": 0}, [], Extended) == {
        "adapters": ["x", "y"],
        "voiceover": False,
    }
    bad = {"start_image": str(tmp_path / "none.png"), "voiceover": "maybe", "adapters": 3}
    read_settings(bad, errors, Extended)
    assert any(e.startswith("start_image") and "is not an existing file" in e for e in errors)
    assert any(e.startswith("voiceover 'maybe' must be yes or no") for e in errors)
    assert any(e.startswith("adapters 3 must be a list") for e in errors)


def test_every_setting_is_on_the_command_line_and_the_shipped_columns_are_kept():
    assert all(setting.flag is not None for _, _, setting in settings_fields())
    assert set(COLUMNS) == {
        "prompt",
        "id",
        "samples",
        "style",
        "duration",
        "scenes",
        "seed",
        "video_model",
        "script_model",
        "keyframe_model",
        "image",  # the model families issue: the first scene's start
        "lora",  # the speed issue: LoRAs on the video model
        "narration",  # the sound issue: narration, its voice, a music bed, burned subtitles
        "voice_model",
        "music",
        "burn_subtitles",
    }
