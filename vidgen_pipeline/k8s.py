"""Kubernetes: what a run's pod asks for under dagster-k8s's ``K8sRunLauncher`` (``deploy/``).

The launcher starts one pod per run and the run executes in it, in one process (the
in-process executor, ``definitions.py``), so each model loads once per run and the whole
run is the GPU work: the GPU request goes on the run through the ``dagster-k8s/config``
tag, which the launcher merges into the Job it creates. Every run that makes videos
carries it (the ``generate_video`` job, the dataset sensor's backfills, the nightly
schedule); ``add_prompt_job`` does not, so registering a prompt never waits for a GPU node.

``VIDGEN_K8S_GPU_POD`` (JSON, read when the code location loads) replaces the default below:
one ``nvidia.com/gpu``, on nodes labelled by NVIDIA's GPU feature discovery, tolerating the
``nvidia.com/gpu`` taint that GPU node pools usually carry.

When a run's pod dies (a node lost, an eviction), run monitoring marks the run failed and
run retries (``deploy/values.yaml``) start it again; ``dagster/retry_on_asset_or_op_failure``
keeps those retries for dead pods only, since the assets' own retry policy already retries
a failing step and a user error (a bad model name) should fail once.
"""

from __future__ import annotations

import json
import os

K8S_CONFIG_TAG = "dagster-k8s/config"
RETRY_ON_FAILURE_TAG = "dagster/retry_on_asset_or_op_failure"
GPU_POD_ENV = "VIDGEN_K8S_GPU_POD"
DEFAULT_GPU_POD = {
    "container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}}},
    "pod_spec_config": {
        "node_selector": {"nvidia.com/gpu.present": "true"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    },
}


def gpu_pod_config() -> dict:
    """The ``dagster-k8s/config`` value of a run that makes videos."""
    raw = os.environ.get(GPU_POD_ENV, "").strip()
    if not raw:
        return DEFAULT_GPU_POD
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"{GPU_POD_ENV} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{GPU_POD_ENV} must be a JSON object (a dagster-k8s/config value)")
    return value


def video_run_tags() -> dict[str, str]:
    """Tags of a run that makes videos: its pod's GPU under ``K8sRunLauncher``, and run
    retries for a dead worker only (both ignored where they do not apply)."""
    return {
        K8S_CONFIG_TAG: json.dumps(gpu_pod_config(), sort_keys=True),
        RETRY_ON_FAILURE_TAG: "false",
    }
