"""Kubernetes without a cluster: dagster-k8s's own K8sRunLauncher, configured from
deploy/values.yaml as the Helm chart configures it, with a stub Kubernetes API client. It
launches a run of generate_video; the Job it would create is checked (image, command, env
from secrets, nvidia.com/gpu). Then the run's pod dies: Dagster's run monitoring marks the
run failed and frees the gpu pool slot it held."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from unittest import mock

import pytest
import yaml
from dagster import in_process_executor, instance_for_test
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.test_utils import InProcessTestWorkspaceLoadTarget, create_run_for_test
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._daemon.monitoring.concurrency import execute_concurrency_slots_iteration
from dagster._daemon.monitoring.run_monitoring import monitor_started_run
from dagster_k8s import K8sRunLauncher
from kubernetes.client import V1Job, V1JobStatus, V1PodList

from vidgen_pipeline.definitions import defs
from vidgen_pipeline_tests.conftest import REPO

VALUES = yaml.safe_load((REPO / "deploy" / "values.yaml").read_text())
RELEASE, NAMESPACE = "vidgen", "vidgen"
PARTITION = "a-red-kite-over-a-beach-ff684164e3a0"


class StubKubernetes:
    """The two Kubernetes API objects the launcher calls: records the Jobs it creates and
    answers with the Job status a test sets."""

    def __init__(self):
        self.jobs: list = []
        self.job_status = V1JobStatus(active=1)
        self.batch = mock.MagicMock(name="BatchV1Api")
        self.batch.create_namespaced_job.side_effect = lambda body, namespace, **_: (
            self.jobs.append((namespace, body))
        )
        self.batch.read_namespaced_job_status.side_effect = lambda *a, **k: V1Job(
            status=self.job_status
        )
        self.core = mock.MagicMock(name="CoreV1Api")
        self.core.list_namespaced_pod.return_value = V1PodList(items=[])


STUB = StubKubernetes()


class StubbedK8sRunLauncher(K8sRunLauncher):
    """dagster-k8s's K8sRunLauncher, unchanged but for its API clients (the constructor's
    own k8s_client_* arguments, meant for this)."""

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(
            inst_data=inst_data,
            k8s_client_batch_api=STUB.batch,
            k8s_client_core_api=STUB.core,
            **config_value,
        )


def run_launcher_config(kubeconfig: Path) -> dict:
    """The K8sRunLauncher config the chart writes into the instance's dagster.yaml from
    deploy/values.yaml (its run-launcher template), for release RELEASE."""
    fullname = f"{RELEASE}-dagster"
    launcher = VALUES["runLauncher"]["config"]["k8sRunLauncher"]
    return {
        "job_namespace": NAMESPACE,
        "load_incluster_config": False,  # loadInclusterConfig: true in a cluster
        "kubeconfig_file": str(kubeconfig),
        "image_pull_policy": launcher["imagePullPolicy"],
        "service_account_name": fullname,
        "dagster_home": "/opt/dagster/dagster_home",
        "instance_config_map": f"{fullname}-instance",
        "postgres_password_secret": VALUES["global"]["postgresqlSecretName"],
        "env_config_maps": [f"{fullname}-pipeline-env"],
        "env_secrets": [s["name"] for s in launcher["envSecrets"]],
        "fail_pod_on_run_failure": launcher["failPodOnRunFailure"],
    }


def code_location(deployment: dict) -> InProcessCodeLocationOrigin:
    """The code location as the chart's user deployment serves it: the image it runs and,
    with includeConfigInLaunchedRuns, its secrets for the runs it launches."""
    image = deployment["image"]
    return InProcessCodeLocationOrigin(
        LoadableTargetOrigin(
            module_name="vidgen_pipeline.definitions", working_directory=str(REPO)
        ),
        container_image=f"{image['repository']}:{image['tag']}",
        container_context={"k8s": {"env_secrets": [s["name"] for s in deployment["envSecrets"]]}},
        location_name=deployment["name"],
    )


@pytest.fixture
def kubeconfig(tmp_path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "none"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return path


@pytest.fixture
def launched(kubeconfig):
    """A generate_video run launched by the K8sRunLauncher (as the webserver launches one),
    with its workspace and instance."""
    STUB.__init__()
    deployment = VALUES["dagster-user-deployments"]["deployments"][0]
    overrides = {
        "run_launcher": {
            "module": __name__,
            "class": "StubbedK8sRunLauncher",
            "config": run_launcher_config(kubeconfig),
        },
        "run_monitoring": {"enabled": True, "free_slots_after_run_end_seconds": 1},
    }
    with instance_for_test(overrides=overrides) as instance:
        target = InProcessTestWorkspaceLoadTarget(code_location(deployment))
        with WorkspaceProcessContext(instance, target) as process_context:
            workspace = process_context.create_request_context()
            location = workspace.get_code_location(deployment["name"])
            remote_job = location.get_repository("__repository__").get_full_job("generate_video")
            run = create_run_for_test(
                instance,
                job_name="generate_video",
                tags={**remote_job.run_tags, "dagster/partition": PARTITION},
                remote_job_origin=remote_job.get_remote_origin(),
                job_code_origin=remote_job.get_python_origin(),
            )
            instance.launch_run(run.run_id, workspace)
            yield instance, process_context, workspace, instance.get_run_by_id(run.run_id)


def test_the_job_runs_generate_video_in_one_gpu_pod_of_the_code_location_image(launched):
    instance, _, _, run = launched
    assert isinstance(instance.run_launcher, K8sRunLauncher)
    ((namespace, job),) = STUB.jobs
    assert namespace == NAMESPACE
    assert job.metadata.labels["dagster/job"] == "generate_video"
    (container,) = job.spec.template.spec.containers
    image = VALUES["dagster-user-deployments"]["deployments"][0]["image"]
    assert container.image == f"{image['repository']}:{image['tag']}"
    # The pod runs the whole run (in-process executor): each model loads once, on its GPU.
    assert container.args[:3] == ["dagster", "api", "execute_run"]
    assert run.run_id in container.args[3]
    assert defs.resolve_job_def("generate_video").executor_def is in_process_executor
    # Env from secrets: the object store's, and the database password the chart's secret holds.
    secrets = {source.secret_ref.name for source in container.env_from if source.secret_ref}
    assert "vidgen-object-store" in secrets
    password = {e.name: e for e in container.env}["DAGSTER_PG_PASSWORD"]
    assert password.value_from.secret_key_ref.name == VALUES["global"]["postgresqlSecretName"]
    # The GPU, from the run's dagster-k8s/config tag.
    assert container.resources.limits == {"nvidia.com/gpu": "1"}
    pod = job.spec.template.spec
    assert pod.node_selector == {"nvidia.com/gpu.present": "true"}
    assert [(t.key, t.effect) for t in pod.tolerations] == [("nvidia.com/gpu", "NoSchedule")]
    assert json.loads(run.tags["dagster-k8s/config"])["container_config"]["resources"]
    assert run.tags["dagster/retry_on_asset_or_op_failure"] == "false"


def test_a_run_whose_pod_died_is_failed_by_run_monitoring_and_its_gpu_slot_freed(launched):
    instance, process_context, workspace, run = launched
    from dagster._core.events import DagsterEvent, DagsterEventType

    instance.report_dagster_event(
        DagsterEvent(DagsterEventType.RUN_START.value, job_name=run.job_name), run.run_id
    )  # the pod's run worker started the run...
    storage = instance.event_log_storage
    storage.set_concurrency_slots("gpu", 1)
    assert storage.claim_concurrency_slot("gpu", run.run_id, "scene_clips").is_claimed
    STUB.job_status = V1JobStatus(active=0, failed=1)  # ...and its pod died.

    logger = logging.getLogger("test_k8s")
    (record,) = instance.get_run_records()
    monitor_started_run(instance, workspace, record, logger)
    failed = instance.get_run_by_id(run.run_id)
    assert failed.status == DagsterRunStatus.FAILURE
    (failure,) = [
        e
        for e in instance.all_logs(run.run_id)
        if e.dagster_event and e.dagster_event.is_run_failure
    ]
    assert "Run has not completed but K8s job has no active pods" in failure.message

    time.sleep(1.5)  # free_slots_after_run_end_seconds
    list(execute_concurrency_slots_iteration(process_context, logger))
    assert storage.get_concurrency_info("gpu").claimed_slots == []
