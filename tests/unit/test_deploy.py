"""Static checks of deploy/: there is no Docker engine or cluster here, so the files are
parsed and the properties that matter are asserted, not run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"
YAML_FILES = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])


def load_all(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def k8s_object(kind: str) -> dict[str, Any]:
    found = [doc for path in sorted(K8S.glob("*.yaml")) for doc in load_all(path) if doc.get("kind") == kind]
    assert len(found) == 1, f"expected one {kind} under deploy/k8s, found {len(found)}"
    return found[0]


def api_container() -> dict[str, Any]:
    containers: list[dict[str, Any]] = k8s_object("Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and continuations joined."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    pairs = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def test_deploy_has_yaml_files() -> None:
    names = {p.relative_to(DEPLOY).as_posix() for p in YAML_FILES}
    assert {
        "compose.yaml",
        "k8s/deployment.yaml",
        "k8s/service.yaml",
        "k8s/hpa.yaml",
        "k8s/pdb.yaml",
        "k8s/postgres-cluster.yaml",
        "k8s/kustomization.yaml",
    } <= names


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_yaml_parses(path: Path) -> None:
    docs = load_all(path)
    assert docs, f"{path} is empty"
    assert all(isinstance(doc, dict) for doc in docs)


@pytest.mark.parametrize("path", sorted(K8S.glob("*.yaml")), ids=lambda p: p.name)
def test_k8s_manifests_are_namespace_agnostic(path: Path) -> None:
    for doc in load_all(path):
        assert "namespace" not in doc.get("metadata", {}), f"{path.name} names a namespace"
        if doc.get("kind") == "Kustomization":
            assert "namespace" not in doc, "the kustomization sets a namespace"


def test_kustomization_lists_every_manifest() -> None:
    (kustomization,) = load_all(K8S / "kustomization.yaml")
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests


def test_deployment_probes() -> None:
    container = api_container()
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    if "startupProbe" in container:
        # A startup probe on the database would let a database outage block rollouts
        # forever; it must be liveness-like.
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"


def test_deployment_runs_as_non_root_with_read_only_root() -> None:
    deployment = k8s_object("Deployment")
    assert deployment["spec"]["replicas"] == 3
    pod_security = deployment["spec"]["template"]["spec"].get("securityContext", {})
    container = api_container()
    security = container["securityContext"]
    assert security.get("runAsNonRoot", pod_security.get("runAsNonRoot")) is True
    assert security.get("runAsUser", pod_security.get("runAsUser", 1)) != 0
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert "resources" in container
    assert container["resources"]["requests"]["cpu"], "the HPA needs a CPU request"


def test_deployment_reads_database_urls_from_secret() -> None:
    env = {e["name"]: e for e in api_container()["env"]}
    url = env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert (url["name"], url["key"]) == ("hiring-news-db", "url")
    assert not url.get("optional", False)
    read_url = env["DATABASE_READ_URL"]["valueFrom"]["secretKeyRef"]
    assert (read_url["name"], read_url["key"], read_url["optional"]) == ("hiring-news-db", "read-url", True)
    # Credentials come from Secrets only, never as literal values in the manifest.
    for name in ("DATABASE_URL", "DATABASE_READ_URL", "HIRING_NEWS_BOOTSTRAP_KEY"):
        assert "value" not in env[name]


def test_service_hpa_and_pdb_match_the_deployment() -> None:
    deployment = k8s_object("Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    port_names = {p["name"] for p in api_container()["ports"]}

    service = k8s_object("Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names

    pdb = k8s_object("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()

    hpa = k8s_object("HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert hpa["spec"]["minReplicas"] >= deployment["spec"]["replicas"]
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]


def test_postgres_cluster_is_cloudnativepg_with_three_instances() -> None:
    cluster = k8s_object("Cluster")
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    assert cluster["spec"]["instances"] == 3
    text = (K8S / "postgres-cluster.yaml").read_text(encoding="utf-8")
    name = cluster["metadata"]["name"]
    assert f"{name}-rw" in text
    assert f"{name}-ro" in text


def test_compose_api_waits_for_healthy_db() -> None:
    (compose,) = load_all(DEPLOY / "compose.yaml")
    services = compose["services"]
    assert services["db"]["image"].startswith("postgres:15")
    assert "healthcheck" in services["db"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in services["db"]["volumes"])
    api = services["api"]
    assert api["depends_on"]["db"]["condition"] == "service_healthy"
    assert api["build"]["dockerfile"] == "deploy/Dockerfile"
    assert api["environment"]["DATABASE_URL"].startswith("postgresql://")
    assert "@db:5432/" in api["environment"]["DATABASE_URL"]


def test_compose_commits_no_secrets() -> None:
    (compose,) = load_all(DEPLOY / "compose.yaml")
    password = compose["services"]["db"]["environment"]["POSTGRES_PASSWORD"]
    assert re.fullmatch(r"\$\{POSTGRES_PASSWORD:\?[^}]*\}", password)
    key = compose["services"]["api"]["environment"]["HIRING_NEWS_BOOTSTRAP_KEY"]
    assert re.fullmatch(r"\$\{HIRING_NEWS_BOOTSTRAP_KEY(:-)?\}", key), "the bootstrap key has a default"


def test_dockerfile_runs_as_non_root_with_healthcheck() -> None:
    instructions = dockerfile_instructions()
    froms = [args for word, args in instructions if word == "FROM"]
    assert len(froms) >= 2, "expected a multi-stage build"
    # Only the last stage's instructions describe the image that runs.
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    runtime = instructions[last_from:]

    users = [args for word, args in runtime if word == "USER"]
    assert users, "the runtime stage has no USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}

    healthchecks = [args for word, args in runtime if word == "HEALTHCHECK"]
    assert len(healthchecks) == 1
    assert "/healthz" in healthchecks[0]
    assert "curl" not in healthchecks[0]  # python:3.11-slim has neither curl nor wget
    assert "wget" not in healthchecks[0]

    (cmd,) = [args for word, args in runtime if word == "CMD"]
    assert cmd.startswith("["), "CMD must be exec form so the server receives SIGTERM"
    assert '"hiring-news", "serve"' in cmd
    assert '"--host", "0.0.0.0"' in cmd


def test_the_image_installs_the_runtime_lock() -> None:
    runs = [args for word, args in dockerfile_instructions() if word == "RUN"]
    assert any("--require-hashes -r /tmp/runtime.txt" in args for args in runs)
    assert ("COPY", "requirements/runtime.txt /tmp/runtime.txt") in dockerfile_instructions()
    # The project's own build uses the locked setuptools, not whatever is newest.
    assert any("pip wheel --no-deps --no-build-isolation" in args for args in runs)


def test_dockerfile_ignore_keeps_what_the_build_needs() -> None:
    lines = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for needed in ("pyproject.toml", "requirements/runtime.txt", "service/"):
        assert f"!{needed}" in patterns or "*" not in patterns
