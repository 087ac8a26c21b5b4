"""`dagster dev`'s webserver loads the code location; ask its GraphQL API what the UI shows."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from vidgen_pipeline_tests.conftest import REPO, cli_env

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
      nodes { jobs { name } sensors { name sensorState { status } } }
    }
  }
}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(port: int, query: str) -> dict:
    body = json.dumps({"query": query}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["data"]


@pytest.fixture
def webserver(tmp_path):
    home = tmp_path / "home"
    subprocess.run(
        [sys.executable, "-m", "vidgen_pipeline.instance"], env=cli_env(home), check=True
    )
    env = {**cli_env(home), "DAGSTER_HOME": str(home / "dagster")}
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dagster_webserver",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-w",
            "workspace.yaml",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"webserver exited: {proc.stderr.read()[-2000:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("webserver did not answer within 120 s")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_ui_shows_six_partitioned_assets_their_checks_jobs_and_sensor(webserver):
    deadline = time.monotonic() + 60
    while True:  # the code location loads in the background after the server answers
        data = graphql(webserver, QUERY)
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
    assert checks["script"] == {"matches_schema"}
    assert checks["scene_clips"] == {"frame_counts_as_planned", "generated_footage"}
    assert checks["final_video"] == {"plays_in_browser", "duration_as_planned"}
    repo = data["repositoriesOrError"]["nodes"][0]
    assert {"generate_video", "add_prompt_job"} <= {j["name"] for j in repo["jobs"]}
    sensors = {s["name"]: s["sensorState"]["status"] for s in repo["sensors"]}
    assert sensors == {"generate_added_prompts": "RUNNING"}
