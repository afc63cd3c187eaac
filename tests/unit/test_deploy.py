"""deploy/, checked offline: its linters (hadolint, ShellCheck, yamllint, kubernetes-validate,
all from the dev lock, none reaching the network), what `docker compose config` and
`kubectl kustomize` say where those commands are installed, and the properties of the
design that matter, parsed from the files. No image is built and nothing is applied: there
is no Docker engine or cluster here (deploy/README.md says what was and was not run)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from service.heartbeat import STALE_SECONDS

DEPLOY: Final = Path(__file__).resolve().parents[2] / "deploy"
K8S: Final = DEPLOY / "k8s"
YAML_FILES: Final = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])
SCRIPTS: Final = sorted(DEPLOY.rglob("*.sh"))
# The linters' executables, installed beside this interpreter by the dev lock.
BIN: Final = Path(sysconfig.get_path("scripts"))
# The Kubernetes releases the manifests are validated against: the oldest one claimed
# (deploy/README.md) and the newest kubernetes-validate ships schemas for.
KUBERNETES_VERSIONS: Final = ("1.31.0", "1.37.0")
# Kinds with no schema in kubernetes-validate: the kustomization (kustomize's own file)
# and CloudNativePG's Cluster (a CRD). Any other kind it cannot find is a mistake, such
# as a wrong apiVersion, which it reports only as a warning.
WITHOUT_SCHEMA: Final = {"Kustomization", "Cluster"}
# The compose file's variables, set to placeholders so that `config` can interpolate.
COMPOSE_ENV: Final = {"POSTGRES_PASSWORD": "placeholder", "POSTGRES_REPLICATION_PASSWORD": "placeholder"}


def run(
    argv: list[str], *, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=120, cwd=cwd)


def tool(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"{name} is not installed beside {sys.executable}: install requirements/dev.txt"
    return str(path)


def load_all(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def k8s_objects(kind: str) -> dict[str, dict[str, Any]]:
    """Every object of this kind under deploy/k8s, by name."""
    return {
        doc["metadata"]["name"]: doc
        for path in sorted(K8S.glob("*.yaml"))
        for doc in load_all(path)
        if doc.get("kind") == kind
    }


def api() -> dict[str, Any]:
    return k8s_objects("Deployment")["hiring-news"]


def projector() -> dict[str, Any]:
    return k8s_objects("Deployment")["hiring-news-projector"]


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def compose() -> dict[str, Any]:
    (document,) = load_all(DEPLOY / "compose.yaml")
    return document


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


# ---- the linters ----------------------------------------------------------------------------


def test_hadolint_passes_the_dockerfile() -> None:
    result = run([tool("hadolint"), "--no-color", str(DEPLOY / "Dockerfile")])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_shellcheck_passes_the_scripts(path: Path) -> None:
    result = run([tool("shellcheck"), "--color=never", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_yamllint_passes_every_yaml_file() -> None:
    result = run([tool("yamllint"), "--strict", "-c", str(DEPLOY / ".yamllint.yaml"), str(DEPLOY)])
    assert result.returncode == 0, result.stdout + result.stderr


def validate_manifests(files: list[str], version: str, stdin: str | None = None) -> tuple[set[str], str]:
    """kubernetes-validate, strict (unknown fields refused); returns the kinds it found no
    schema for, and its output. Fails on any error."""
    result = run([tool("kubernetes-validate"), "--strict", "-k", version, *files], stdin=stdin)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "ERROR" not in output and "FATAL" not in output, output
    return set(re.findall(r"Couldn't find schema for kind (\S+)", output)), output


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_kubernetes_validate_passes_the_manifests(version: str) -> None:
    files = [str(p) for p in sorted(K8S.glob("*.yaml"))]
    unknown, output = validate_manifests(files, version)
    # CloudNativePG's Cluster is checked by the static tests below, and was validated by
    # hand against the operator's CRD (deploy/README.md); the kustomization by
    # `kubectl kustomize` where kubectl is installed.
    assert unknown == WITHOUT_SCHEMA, output
    validated = {doc["kind"] for p in K8S.glob("*.yaml") for doc in load_all(p)} - WITHOUT_SCHEMA
    assert output.count("passed for resource") == sum(
        1 for p in K8S.glob("*.yaml") for doc in load_all(p) if doc["kind"] in validated
    ), output


@pytest.mark.parametrize(
    ("linter", "bad"),
    [
        pytest.param("hadolint", "FROM python\nRUN apt-get install curl\n", id="hadolint"),
        pytest.param("yamllint", "key: value\nkey: again\n", id="yamllint"),
        pytest.param(
            "kubernetes-validate",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  ports: 80\n",
            id="kubernetes-validate",
        ),
        pytest.param(
            "kubernetes-validate-strict",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspce: {}\n",
            id="kubernetes-validate-strict",
        ),
        pytest.param(
            "kubernetes-validate-kind",
            "apiVersion: apps/v2\nkind: Deployment\nmetadata:\n  name: x\n",
            id="kubernetes-validate-kind",
        ),
    ],
)
def test_the_linters_catch_mistakes(linter: str, bad: str) -> None:
    """Each check above fails on a known mistake, so a pass means something."""
    if linter == "hadolint":
        result = run([tool("hadolint"), "--no-color", "-"], stdin=bad)
        assert result.returncode != 0 and "DL3008" in result.stdout, result.stdout
    elif linter == "yamllint":
        result = run([tool("yamllint"), "-c", str(DEPLOY / ".yamllint.yaml"), "-"], stdin=bad)
        assert result.returncode != 0 and "duplication of key" in result.stdout, result.stdout
    elif linter == "kubernetes-validate-kind":
        unknown, _ = validate_manifests(["-"], KUBERNETES_VERSIONS[0], stdin=bad)
        assert unknown == {"Deployment"}, "a wrong apiVersion would go through as an unknown kind"
    else:
        result = run([tool("kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSIONS[0], "-"], stdin=bad)
        assert result.returncode != 0 and "did not validate" in result.stdout, result.stdout


def test_shellcheck_catches_mistakes(tmp_path: Path) -> None:
    script = tmp_path / "bad.sh"
    script.write_text("#!/usr/bin/env bash\nrm -rf $DIR/*\n", encoding="utf-8")
    result = run([tool("shellcheck"), "--color=never", str(script)])
    assert result.returncode != 0 and "SC2086" in result.stdout, result.stdout


# ---- where the tools are installed -----------------------------------------------------------


def docker_compose() -> list[str]:
    docker = shutil.which("docker")
    if docker is None or run([docker, "compose", "version"]).returncode != 0:
        pytest.skip("docker compose is not installed here (deploy/README.md)")
    return [docker, "compose"]


def test_docker_compose_accepts_the_compose_file(monkeypatch: pytest.MonkeyPatch) -> None:
    command = docker_compose()
    for name, value in COMPOSE_ENV.items():
        monkeypatch.setenv(name, value)
    result = run([*command, "-f", str(DEPLOY / "compose.yaml"), "config", "-q"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_kustomize_renders_what_kubernetes_validate_accepts() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed here (deploy/README.md)")
    rendered = run([kubectl, "kustomize", str(K8S)])
    assert rendered.returncode == 0, rendered.stderr
    unknown, output = validate_manifests(["-"], KUBERNETES_VERSIONS[0], stdin=rendered.stdout)
    assert unknown == {"Cluster"}, output
    kinds = [doc["kind"] for doc in yaml.safe_load_all(rendered.stdout) if doc]
    assert sorted(kinds) == sorted(
        doc["kind"] for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml" for doc in load_all(p)
    )


# ---- the design, in the files --------------------------------------------------------------


def test_deploy_has_its_files() -> None:
    names = {p.relative_to(DEPLOY).as_posix() for p in [*YAML_FILES, *SCRIPTS]}
    assert {
        "compose.yaml",
        "postgres/primary-init.sh",
        "postgres/replica-entrypoint.sh",
        "k8s/deployment.yaml",
        "k8s/projector.yaml",
        "k8s/service.yaml",
        "k8s/hpa.yaml",
        "k8s/pdb.yaml",
        "k8s/postgres-cluster.yaml",
        "k8s/kustomization.yaml",
    } <= names


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


def test_the_api_never_projects_and_reads_from_the_standbys() -> None:
    deployment = api()
    assert deployment["spec"]["replicas"] == 3
    the_container = container(deployment)
    assert the_container["args"][:2] == ["hiring-news", "serve"]
    assert "--no-projector" in the_container["args"]
    env = {e["name"]: e for e in the_container["env"]}
    url = env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert (url["name"], url["key"]) == ("hiring-news-db", "url")
    read_url = env["DATABASE_READ_URL"]["valueFrom"]["secretKeyRef"]
    assert (read_url["name"], read_url["key"]) == ("hiring-news-db", "read-url")
    assert not url.get("optional", False) and not read_url.get("optional", False)
    # Credentials come from Secrets only, never as literal values in the manifest.
    for name in ("DATABASE_URL", "DATABASE_READ_URL", "HIRING_NEWS_BOOTSTRAP_KEY"):
        assert "value" not in env[name]
    # The read URL the README makes is the -ro service of the Cluster in postgres-cluster.yaml.
    (cluster_name,) = k8s_objects("Cluster")
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    assert f"{cluster_name}-ro" in readme and "read-url=" in readme


def test_the_api_probes() -> None:
    the_container = container(api())
    assert the_container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert the_container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    # A startup probe on the database would let a database outage block rollouts
    # forever; it must be liveness-like.
    assert the_container["startupProbe"]["httpGet"]["path"] == "/healthz"


def heartbeat_of(args: list[str]) -> str:
    return args[args.index("--heartbeat") + 1]


def test_the_projector_runs_alone_with_a_standby() -> None:
    deployment = projector()
    assert deployment["spec"]["replicas"] == 2
    the_container = container(deployment)
    assert the_container["args"][:2] == ["hiring-news", "project"]
    assert "ports" not in the_container
    env = {e["name"]: e for e in the_container["env"]}
    url = env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert (url["name"], url["key"]) == ("hiring-news-db", "url")
    # The projector writes: it never reads from a standby.
    assert "DATABASE_READ_URL" not in env
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "projector"
    budget = k8s_objects("PodDisruptionBudget")["hiring-news-projector"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_the_projector_probes_check_its_heartbeat() -> None:
    """Exec probes (it opens no port) on the file `--heartbeat` keeps fresh, with the
    staleness service/heartbeat.py documents; the compose file's health check is the same."""
    the_container = container(projector())
    path = heartbeat_of(the_container["args"])
    commands = [
        the_container[probe]["exec"]["command"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe")
    ]
    assert all(command == commands[0] for command in commands)
    assert commands[0][-1] == path
    assert f"> {STALE_SECONDS})" in commands[0][2]
    # The root filesystem is read-only: the file lives on a mounted volume.
    assert any(path.startswith(m["mountPath"] + "/") for m in the_container["volumeMounts"])
    service = compose()["services"]["projector"]
    assert service["healthcheck"]["test"] == ["CMD", *commands[0]]
    assert heartbeat_of(service["command"]) == path


def test_pods_run_as_non_root_with_read_only_root() -> None:
    for deployment in (api(), projector()):
        pod_security = deployment["spec"]["template"]["spec"].get("securityContext", {})
        the_container = container(deployment)
        security = the_container["securityContext"]
        assert security.get("runAsNonRoot", pod_security.get("runAsNonRoot")) is True
        assert security.get("runAsUser", pod_security.get("runAsUser", 1)) != 0
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert the_container["resources"]["requests"]["cpu"], "a CPU request: the HPA needs the API's"


def test_service_hpa_and_pdb_target_the_api_only() -> None:
    deployment = api()
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    projector_labels = projector()["spec"]["template"]["metadata"]["labels"]
    port_names = {p["name"] for p in container(deployment)["ports"]}

    (service,) = k8s_objects("Service").values()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert not service["spec"]["selector"].items() <= projector_labels.items()
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names

    budget = k8s_objects("PodDisruptionBudget")["hiring-news"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert not budget["spec"]["selector"]["matchLabels"].items() <= projector_labels.items()

    (hpa,) = k8s_objects("HorizontalPodAutoscaler").values()
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert hpa["spec"]["minReplicas"] >= deployment["spec"]["replicas"]
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]


def test_postgres_cluster_is_cloudnativepg_with_standbys() -> None:
    (cluster,) = k8s_objects("Cluster").values()
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    assert cluster["spec"]["instances"] == 3
    text = (K8S / "postgres-cluster.yaml").read_text(encoding="utf-8")
    name = cluster["metadata"]["name"]
    assert f"{name}-rw" in text
    assert f"{name}-ro" in text


def test_compose_has_a_primary_a_replica_a_projector_and_two_api_replicas() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "postgres-replica", "projector", "api-1", "api-2"}
    primary, replica = services["postgres"], services["postgres-replica"]
    assert primary["image"] == replica["image"] == "postgres:15"
    assert any(v.endswith(":/var/lib/postgresql/data") for v in primary["volumes"])
    assert any(v.endswith(":/var/lib/postgresql/data") for v in replica["volumes"])
    assert {v.split(":")[0] for v in primary["volumes"]} != {v.split(":")[0] for v in replica["volumes"]}
    assert any(
        v.startswith("./postgres/primary-init.sh:/docker-entrypoint-initdb.d/") for v in primary["volumes"]
    )
    assert replica["entrypoint"][-1] == "/usr/local/bin/replica-entrypoint.sh"
    assert replica["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in primary and "healthcheck" in replica

    assert services["projector"]["command"][:2] == ["hiring-news", "project"]
    assert services["projector"]["deploy"]["replicas"] == 2
    assert "DATABASE_READ_URL" not in services["projector"]["environment"]
    ports = set()
    for name in ("api-1", "api-2"):
        service = services[name]
        assert service["command"][:2] == ["hiring-news", "serve"] and "--no-projector" in service["command"]
        env = service["environment"]
        assert "@postgres:5432/" in env["DATABASE_URL"]
        assert "@postgres-replica:5432/" in env["DATABASE_READ_URL"]
        ports.add(service["ports"][0])
    assert len(ports) == 2, "the two API replicas publish one host port each"
    for name in ("projector", "api-1", "api-2"):
        service = services[name]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert service["depends_on"]["postgres-replica"]["condition"] == "service_healthy"


def test_the_replica_copies_the_primary_through_the_slot_and_role_it_makes() -> None:
    init = (DEPLOY / "postgres" / "primary-init.sh").read_text(encoding="utf-8")
    entry = (DEPLOY / "postgres" / "replica-entrypoint.sh").read_text(encoding="utf-8")
    role = re.search(r"CREATE ROLE (\w+) WITH REPLICATION", init)
    slot = re.search(r"pg_create_physical_replication_slot\('(\w+)'\)", init)
    assert role and slot
    assert f"host replication {role[1]} " in init
    lines = re.sub(r"\\\n\s*", " ", entry).splitlines()
    (copy,) = [" ".join(shlex.split(line)) for line in lines if "gosu postgres pg_basebackup" in line]
    assert f"--username {role[1]}" in copy and f"--slot {slot[1]}" in copy
    assert "--write-recovery-conf" in copy
    assert 'exec docker-entrypoint.sh "$@"' in entry


def test_compose_commits_no_secrets() -> None:
    services = compose()["services"]
    for name in ("POSTGRES_PASSWORD", "POSTGRES_REPLICATION_PASSWORD"):
        assert re.fullmatch(rf"\$\{{{name}:\?[^}}]*\}}", services["postgres"]["environment"][name])
    assert re.fullmatch(
        r"\$\{POSTGRES_REPLICATION_PASSWORD:\?[^}]*\}",
        services["postgres-replica"]["environment"]["POSTGRES_REPLICATION_PASSWORD"],
    )
    for name in ("api-1", "api-2", "projector"):
        for value in services[name]["environment"].values():
            for password in re.findall(r"postgresql://[^:]+:([^@]*)@", value):
                assert re.fullmatch(r"\$\{POSTGRES_PASSWORD:\?[^}]*\}", password), value
    key = services["api-1"]["environment"]["HIRING_NEWS_BOOTSTRAP_KEY"]
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
