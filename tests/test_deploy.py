"""Deployment files: the Ray launcher config (with Ray's defaults filled in, as `ray up` does) validates against
the schema shipped in `ray`; the Kubernetes and compose manifests are consistent."""

from pathlib import Path

import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

DEPLOY = Path(__file__).parents[1] / "deploy"


def test_ray_cluster_launcher_config_validates_against_ray_schema():
    config = yaml.safe_load((DEPLOY / "ray" / "cluster-aws-gpu.yaml").read_text())
    validate_config(prepare_config(config))
    gpu_types = [t for t in config["available_node_types"].values() if t["resources"].get("GPU", 0) >= 1]
    assert gpu_types and config["head_node_type"] in config["available_node_types"]


def test_kuberay_manifests_have_gpu_workers_and_matching_ray_version():
    cluster = next(d for d in yaml.safe_load_all((DEPLOY / "kuberay" / "raycluster.yaml").read_text())
                   if d["kind"] == "RayCluster")
    job = yaml.safe_load((DEPLOY / "kuberay" / "rayjob.yaml").read_text())
    assert job["kind"] == "RayJob" and "stylediscover sweep run" in job["spec"]["entrypoint"]
    for spec in (cluster["spec"], job["spec"]["rayClusterSpec"]):
        assert spec["rayVersion"] == ray.__version__
        limits = spec["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert limits["nvidia.com/gpu"] >= 1


def test_mlflow_server_uses_postgresql_and_an_artifact_store():
    docs = list(yaml.safe_load_all((DEPLOY / "mlflow" / "mlflow-postgres.yaml").read_text()))
    server = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "mlflow")
    command = server["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("--backend-store-uri") + 1].startswith("postgresql://")
    assert "--artifacts-destination" in command
    compose = yaml.safe_load((DEPLOY / "docker" / "compose.yaml").read_text())
    assert {"postgres", "mlflow", "ray-head"} <= set(compose["services"])


def test_schema_check_catches_mistakes():
    import pytest

    config = yaml.safe_load((DEPLOY / "ray" / "cluster-aws-gpu.yaml").read_text())
    config["available_node_types"]["gpu_worker"]["resources"]["GPU"] = "one"
    with pytest.raises(Exception, match="GPU|one"):
        validate_config(prepare_config(config))
