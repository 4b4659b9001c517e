"""Deployment files, each validated offline against the schema of the tool that reads it (tests/schemas/README.md): the
Ray launcher config by Ray's own validator, KubeRay objects by the KubeRay v1.5.1 CRD schemas in tests/schemas, every
Kubernetes object (and the core types inside KubeRay's) by kubernetes-validate's strict schemas, compose.yaml by the
Compose Specification's schema, the Dockerfile by Docker's parser. Then what the files must say: token authentication,
jobs submitted through the Jobs API, health checks, restart policies, non-root containers, matching Ray versions."""

import copy
import json
import re
from functools import cache
from importlib.resources import files
from pathlib import Path

import dockerfile
import jsonschema
import kubernetes_validate
import pytest
import ray
import yaml
from jsonschema.protocols import Validator
from ray.autoscaler._private.util import prepare_config, validate_config
from referencing import Registry, Resource

ROOT = Path(__file__).parents[1]
DEPLOY = ROOT / "deploy"
KUBERAY_SCHEMAS = Path(__file__).parent / "schemas" / "kuberay-v1.5.1"
KUBERNETES = "1.32"
KUBERNETES_FILES = sorted([*(DEPLOY / "kuberay").glob("*.yaml"), *(DEPLOY / "mlflow").glob("*.yaml")])
LONG_RUNNING_RESTARTS = {"always", "unless-stopped", "on-failure"}
DOCKERFILE_INSTRUCTIONS = {"ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
                           "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def kuberay_objects(kind: str) -> list[dict]:
    return [doc for path in (DEPLOY / "kuberay").glob("*.yaml") for doc in documents(path) if doc["kind"] == kind]


@cache
def kuberay_validators() -> dict[str, Validator]:
    """Per kind, a validator of the KubeRay schemas whose Kubernetes types resolve in kubernetes-validate's strict
    definitions of the same Kubernetes version."""
    folder = files("kubernetes_validate") / "kubernetes-json-schema" / f"v{KUBERNETES}.0-local-strict"
    schemas = {kind: json.loads((KUBERAY_SCHEMAS / f"{kind.lower()}.json").read_text())
               for kind in ("RayCluster", "RayJob")}
    resources = [json.loads((folder / "_definitions.json").read_text()), *schemas.values()]
    registry = Registry().with_resources((r["$id"], Resource.from_contents(r)) for r in resources)
    return {kind: jsonschema.Draft202012Validator(schema, registry=registry) for kind, schema in schemas.items()}


def validate_kubernetes(doc: dict) -> None:
    """Raises jsonschema.ValidationError where `doc` breaks the schema the API server holds for its kind."""
    if doc["apiVersion"] == "ray.io/v1":
        kuberay_validators()[doc["kind"]].validate(doc)
    else:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def compose_validator() -> Validator:
    schema = json.loads((files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text())
    return jsonschema.Draft202012Validator(schema)


def dockerfile_commands() -> tuple:
    """The Dockerfile as Docker's own parser (BuildKit's, through the `dockerfile` package) reads it."""
    return dockerfile.parse_file(str(DEPLOY / "docker" / "Dockerfile"))


def pod_templates(doc: dict) -> list[dict]:
    spec = doc["spec"].get("rayClusterSpec", doc["spec"])
    return [spec["headGroupSpec"]["template"], *(g["template"] for g in spec["workerGroupSpecs"])]


@pytest.mark.parametrize("path", KUBERNETES_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_kubernetes_manifests_validate_against_their_schemas(path):
    for doc in documents(path):
        validate_kubernetes(doc)


def test_compose_validates_against_the_compose_spec():
    compose_validator().validate(yaml.safe_load((DEPLOY / "docker" / "compose.yaml").read_text()))


def test_ray_cluster_launcher_config_validates_against_ray_schema_and_authenticates():
    config = yaml.safe_load((DEPLOY / "ray" / "cluster-aws-gpu.yaml").read_text())
    validate_config(prepare_config(config))
    gpu_types = [t for t in config["available_node_types"].values() if t["resources"].get("GPU", 0) >= 1]
    assert gpu_types and config["head_node_type"] in config["available_node_types"]
    starts = [c for c in config["head_start_ray_commands"] + config["worker_start_ray_commands"] if "ray start" in c]
    assert len(starts) == 2 and all(c.startswith("RAY_AUTH_MODE=token ray start") for c in starts)
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"


def test_kuberay_clusters_authenticate_run_as_non_root_and_match_the_image():
    base_image = re.match(r"rayproject/ray:([\d.]+)-", dockerfile_commands()[0].value[0])
    cluster, job = kuberay_objects("RayCluster")[0], kuberay_objects("RayJob")[0]
    assert "--address auto" in job["spec"]["entrypoint"] and job["spec"]["shutdownAfterJobFinishes"]
    for doc in (cluster, job):
        spec = doc["spec"].get("rayClusterSpec", doc["spec"])
        assert spec["rayVersion"] == ray.__version__ == base_image.group(1)
        assert spec["authOptions"] == {"mode": "token"}
        assert spec["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["resources"]["limits"][
            "nvidia.com/gpu"] >= 1
        for template in pod_templates(doc):
            security = template["spec"]["securityContext"]
            assert security["runAsNonRoot"] and security["fsGroup"]


def test_rayjob_file_stands_on_its_own():
    """Every volume claim its Pods mount is in rayjob.yaml; its sweep spec is in the image (/app)."""
    docs = documents(DEPLOY / "kuberay" / "rayjob.yaml")
    claims = {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
    job = next(d for d in docs if d["kind"] == "RayJob")
    mounted = {v["persistentVolumeClaim"]["claimName"] for t in pod_templates(job) for v in t["spec"]["volumes"]}
    assert mounted <= claims
    spec_path = re.search(r"sweep run /app/(\S+)", job["spec"]["entrypoint"]).group(1)
    assert (ROOT / spec_path).is_file()


def test_mlflow_and_postgresql_have_probes_and_keep_passwords_in_the_secret():
    docs = documents(DEPLOY / "mlflow" / "mlflow-postgres.yaml")
    server = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "mlflow")
    command = server["spec"]["template"]["spec"]["containers"][0]["command"]
    assert re.fullmatch(r"postgresql://\w+@[\w.:]+/mlflow", command[command.index("--backend-store-uri") + 1])
    assert "--artifacts-destination" in command
    for workload in (d for d in docs if d["kind"] in ("Deployment", "StatefulSet")):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"]
        for container in pod["containers"]:
            assert {"livenessProbe", "readinessProbe"} <= set(container)


def test_compose_submits_through_the_jobs_api_with_health_checks_and_restarts():
    services = yaml.safe_load((DEPLOY / "docker" / "compose.yaml").read_text())["services"]
    assert {"postgres", "mlflow", "ray-head", "ray-worker"} <= set(services)
    for name in ("postgres", "mlflow", "ray-head", "ray-worker"):
        assert services[name]["restart"] in LONG_RUNNING_RESTARTS and services[name]["healthcheck"]["test"]
    for name in ("ray-head", "ray-worker", "sweep"):
        assert services[name]["environment"]["RAY_AUTH_MODE"] == "token"
        assert services[name]["environment"]["RAY_AUTH_TOKEN"].startswith("${RAY_AUTH_TOKEN:?")
    assert "--include-dashboard=true" in services["ray-head"]["command"]
    assert not any(":6379" in port for service in services.values() for port in service.get("ports", []))
    assert services["sweep"]["command"].startswith("ray job submit --address http://ray-head:8265 -- ")
    assert "storage:/data" in services["ray-head"]["volumes"] and "storage:/data" in services["ray-worker"]["volumes"]


def test_image_installs_under_constraints_and_runs_as_a_non_root_user():
    commands = dockerfile_commands()
    assert {c.cmd for c in commands} <= DOCKERFILE_INSTRUCTIONS and commands[0].cmd == "FROM"
    copied = [source for c in commands if c.cmd == "COPY" for source in c.value[:-1]]
    assert all((ROOT / source).exists() for source in copied) and "constraints.txt" in copied
    assert re.fullmatch(r"[1-9]\d*:\d+", [c.value[0] for c in commands if c.cmd == "USER"][-1])
    assert any(re.search(r"pip install .*-c constraints\.txt \.", c.value[0]) for c in commands if c.cmd == "RUN")


def mutated(doc: dict, change) -> dict:
    doc = copy.deepcopy(doc)
    change(doc)
    return doc


@pytest.mark.parametrize("what", ["kuberay field", "kuberay type", "pod template field", "core object", "compose"])
def test_schema_checks_catch_mistakes(what):
    cluster = kuberay_objects("RayCluster")[0]
    postgres = next(d for d in documents(DEPLOY / "mlflow" / "mlflow-postgres.yaml") if d["kind"] == "StatefulSet")
    compose = yaml.safe_load((DEPLOY / "docker" / "compose.yaml").read_text())
    bad = {
        "kuberay field": lambda: validate_kubernetes(mutated(cluster, lambda d: d["spec"].update(
            workerGroupSpec=d["spec"].pop("workerGroupSpecs")))),
        "kuberay type": lambda: validate_kubernetes(mutated(cluster, lambda d: d["spec"]["workerGroupSpecs"][0].update(
            maxReplicas="eight"))),
        "pod template field": lambda: validate_kubernetes(mutated(cluster, lambda d: d["spec"]["headGroupSpec"][
            "template"]["spec"]["containers"][0].update(imagePullPolicyy="Always"))),
        "core object": lambda: validate_kubernetes(mutated(postgres, lambda d: d["spec"].update(replicas="one"))),
        "compose": lambda: compose_validator().validate(mutated(compose, lambda d: d["services"]["mlflow"][
            "healthcheck"].update(intervall="5s"))),
    }
    with pytest.raises(jsonschema.ValidationError):
        bad[what]()


def test_ray_schema_check_catches_mistakes():
    config = yaml.safe_load((DEPLOY / "ray" / "cluster-aws-gpu.yaml").read_text())
    config["available_node_types"]["gpu_worker"]["resources"]["GPU"] = "one"
    with pytest.raises(Exception, match="GPU|one"):
        validate_config(prepare_config(config))
