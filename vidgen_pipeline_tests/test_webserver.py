"""`dagster dev` as `make ui` starts it: ask its GraphQL API what the UI shows, and add a
prompt through the Launchpad job the way a user clicks it (the daemon's sensor does the rest).

The server is conftest's ``webserver``, one per session, shared with test_browser (the two
modules run on one xdist worker)."""

from __future__ import annotations

import json
import time
import urllib.request

from vidgen_pipeline.core.media import probe_video
from vidgen_pipeline.core.requests import partition_key_for
from vidgen_pipeline_tests.conftest import graphql

QUERY = """
{
  assetNodes {
    assetKey { path }
    groupName
    kinds
    description
    isPartitioned
    partitionDefinition { name }
    assetChecksOrError { ... on AssetChecks { checks { name } } }
  }
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes {
        jobs { name }
        sensors { name sensorState { status } }
        schedules { name scheduleState { status } }
      }
    }
  }
}
"""


def test_ui_shows_six_partitioned_assets_their_checks_jobs_and_sensor(webserver):
    port, _ = webserver
    deadline = time.monotonic() + 60
    while True:  # the code location loads in the background after the server answers
        data = graphql(port, QUERY)
        if data["assetNodes"] or time.monotonic() > deadline:
            break
        time.sleep(1)
    nodes = {"/".join(n["assetKey"]["path"]): n for n in data["assetNodes"]}
    assert set(nodes) == {
        "prompt",
        "script",
        "optimized_prompts",
        "keyframes",
        "scene_clips",
        "final_video",
    }
    for name, node in nodes.items():
        assert node["isPartitioned"] and node["partitionDefinition"]["name"] == "prompts", name
        assert node["description"], f"{name} has no docstring"
        assert "python" in node["kinds"], name
    assert nodes["script"]["groupName"] == "story" and nodes["final_video"]["groupName"] == "media"
    checks = {
        n: {c["name"] for c in node["assetChecksOrError"]["checks"]} for n, node in nodes.items()
    }
    assert checks["script"] == {"matches_schema", "written_by_requested_writer"}
    quality = {"not_blank", "not_frozen", "no_flicker"}
    assert checks["scene_clips"] == {"frame_counts_as_planned", "generated_footage"} | quality
    assert (
        checks["final_video"]
        == {
            "plays_in_browser",
            "duration_as_planned",
            "one_audio_track",
        }
        | quality
    )
    repo = data["repositoriesOrError"]["nodes"][0]
    assert {"generate_video", "add_prompt_job"} <= {j["name"] for j in repo["jobs"]}
    sensors = {s["name"]: s["sensorState"]["status"] for s in repo["sensors"]}
    assert sensors == {"generate_added_prompts": "RUNNING", "prompt_datasets": "RUNNING"}
    schedules = {s["name"]: s["scheduleState"]["status"] for s in repo["schedules"]}
    assert schedules == {"nightly_missing": "RUNNING"}


LAUNCH = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""
RUNS = "{ runsOrError { ... on Runs { results { jobName status tags { key value } } } } }"


def test_launchpad_prompt_becomes_a_video_through_the_daemon(webserver):
    port, home = webserver
    text = "A hot air balloon drifts over a valley at sunrise. 热气球缓缓升起。"
    config = {"prompt": text, "duration_s": 2.0, "width": 128, "height": 72, "fps": 8.0}
    params = {
        "selector": {
            "repositoryLocationName": "vidgen_pipeline",
            "repositoryName": "__repository__",
            "jobName": "add_prompt_job",
        },
        "runConfigData": {"ops": {"add_prompt": {"config": config}}},
    }
    body = json.dumps({"query": LAUNCH, "variables": {"params": params}}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        launched = json.loads(response.read())["data"]["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    deadline = time.monotonic() + 240
    runs: list = []
    while time.monotonic() < deadline:
        runs = graphql(port, RUNS)["runsOrError"]["results"]
        made = [  # the run the sensor launched for this prompt (others share the server)
            r
            for r in runs
            if r["jobName"] == "generate_video"
            and {"key": "dagster/partition", "value": partition_key_for(text)} in r["tags"]
        ]
        if made and made[0]["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(2)
    statuses = {r["jobName"]: r["status"] for r in runs}
    assert statuses == {"add_prompt_job": "SUCCESS", "generate_video": "SUCCESS"}
    video = home / "storage" / "final_video" / f"{partition_key_for(text)}.mp4"
    facts = probe_video(video)
    assert (facts.width, facts.height, facts.frame_count) == (128, 72, 16)


BACKFILLS = """
{ partitionBackfillsOrError { ... on PartitionBackfills { results { id status numPartitions } } } }
"""
RUN_TAGS = "{ runsOrError { ... on Runs { results { status tags { key value } } } } }"


def test_a_dataset_dropped_in_the_folder_becomes_one_backfill_run(webserver):
    """The sensor turns the rows into partitions and a backfill; the daemon runs both
    prompts in one run (the backfill policy), so each model would load once."""
    _, home = webserver
    port = webserver[0]
    folder = home / "datasets"
    folder.mkdir(exist_ok=True)
    tmp = folder / "shots.csv.tmp"  # written aside, then renamed: never read half-written
    tmp.write_text("prompt,duration\nA paper lantern rises.,1\nA red door opens.,1\n")
    tmp.rename(folder / "shots.csv")
    keys = {partition_key_for("A paper lantern rises."), partition_key_for("A red door opens.")}
    videos = [home / "storage" / "final_video" / f"{key}.mp4" for key in keys]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not all(v.exists() for v in videos):
        time.sleep(3)
    assert all(v.exists() for v in videos), [v.name for v in videos]
    backfills = graphql(port, BACKFILLS)["partitionBackfillsOrError"]["results"]
    assert len(backfills) == 1
    runs = graphql(port, RUN_TAGS)["runsOrError"]["results"]
    ranges = [
        {t["key"]: t["value"] for t in run["tags"]}
        for run in runs
        if any(t["key"] == "dagster/backfill" for t in run["tags"])
    ]
    assert len(ranges) == 1  # both prompts in one run
    assert {
        ranges[0]["dagster/asset_partition_range_start"],
        ranges[0]["dagster/asset_partition_range_end"],
    } == keys
