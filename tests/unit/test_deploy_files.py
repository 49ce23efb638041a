"""Static checks of Dockerfile, docker-compose.yml and deploy/: no Docker, cluster or network.

The environment variable names in these files are checked against ``worker.settings.Settings``,
so a misspelt or renamed setting fails here instead of being silently ignored at runtime.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import AliasChoices, BaseModel

from worker.settings import Settings, Topics

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DEPLOY_DIR = ROOT / "deploy"

DEPLOY_YAML = sorted(DEPLOY_DIR.glob("*.yaml"))
# Every file that names settings: a typo anywhere in them (comments included) fails.
FILES_NAMING_SETTINGS = [
    DOCKERFILE,
    COMPOSE_FILE,
    *sorted(p for p in DEPLOY_DIR.rglob("*") if p.is_file()),
]

SETTING_NAME = re.compile(r"\bORDER_STATUS_[A-Za-z0-9_]*[A-Za-z0-9]")
# kafka-init's `create "$$<COUNT VARIABLE>" <topic>` lines.
CREATE_TOPIC = re.compile(r'^\s*create "\$\$(\w+)" (\S+)$', re.MULTILINE)
UNACCEPTED_REDIS_NAME = "ORDER_STATUS_REDIS_URL"


def _accepted_env_names() -> frozenset[str]:
    """The environment variable names ``Settings`` reads, derived from its fields."""
    prefix = str(Settings.model_config.get("env_prefix") or "").upper()
    delimiter = str(Settings.model_config.get("env_nested_delimiter") or "__")
    names: set[str] = set()
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, str):
            names.add(alias.upper())
            continue
        if isinstance(alias, AliasChoices):
            names.update(c.upper() for c in alias.choices if isinstance(c, str))
            continue
        env_name = f"{prefix}{field_name.upper()}"
        names.add(env_name)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names.update(f"{env_name}{delimiter}{sub.upper()}" for sub in annotation.model_fields)
    return frozenset(names)


ACCEPTED_ENV_NAMES = _accepted_env_names()


def _yaml_documents(path: Path) -> list[dict[str, Any]]:
    docs = [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]
    assert docs, f"{path.name} holds no YAML document"
    for doc in docs:
        assert isinstance(doc, dict), f"{path.name}: a document is not a mapping"
    return docs


def _deploy_objects() -> list[dict[str, Any]]:
    return [doc for path in DEPLOY_YAML for doc in _yaml_documents(path)]


def _one_object(kind: str) -> dict[str, Any]:
    found = [doc for doc in _deploy_objects() if doc.get("kind") == kind]
    assert len(found) == 1, f"expected one {kind} in deploy/, found {len(found)}"
    return found[0]


def _compose() -> dict[str, Any]:
    (doc,) = _yaml_documents(COMPOSE_FILE)
    return doc


def _service(name: str) -> dict[str, Any]:
    services = _compose()["services"]
    assert isinstance(services, dict)
    service = services[name]
    assert isinstance(service, dict)
    return service


def _env(service: dict[str, Any]) -> dict[str, str]:
    """A compose ``environment`` (mapping or list of KEY=VALUE) as a str -> str mapping."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        pairs = (str(item).split("=", 1) for item in raw)
        return {pair[0]: pair[1] if len(pair) > 1 else "" for pair in pairs}
    assert isinstance(raw, dict)
    return {str(key): _env_value(value) for key, value in raw.items()}


def _env_value(value: object) -> str:
    # Compose passes YAML booleans on as "true"/"false", like Kubernetes would need quoted.
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def _settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Builds ``Settings`` from exactly ``env``, as the container would see it."""
    for name in ACCEPTED_ENV_NAMES | {UNACCEPTED_REDIS_NAME}:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, comments dropped and continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        keyword, _, rest = full.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


# --- the accepted names themselves -----------------------------------------------------------


def test_accepted_env_names_are_derived_from_settings() -> None:
    assert "ORDER_STATUS_BOOTSTRAP_SERVERS" in ACCEPTED_ENV_NAMES
    assert "ORDER_STATUS_SASL_PASSWORD" in ACCEPTED_ENV_NAMES
    assert "REDIS_URL" in ACCEPTED_ENV_NAMES
    assert UNACCEPTED_REDIS_NAME not in ACCEPTED_ENV_NAMES
    topic_names = {f"ORDER_STATUS_TOPICS__{name.upper()}" for name in Topics.model_fields}
    assert topic_names <= ACCEPTED_ENV_NAMES


def _relative_id(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("path", FILES_NAMING_SETTINGS, ids=_relative_id)
def test_every_order_status_variable_is_a_real_setting(path: Path) -> None:
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing"
    named = set(SETTING_NAME.findall(path.read_text(encoding="utf-8")))
    unknown = sorted(named - ACCEPTED_ENV_NAMES)
    assert not unknown, f"{path.relative_to(ROOT)} names settings that do not exist: {unknown}"


# --- Dockerfile ------------------------------------------------------------------------------


def test_dockerfile_installs_from_the_hashed_lock_and_runs_the_worker_as_non_root() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    instructions = _dockerfile_instructions()
    runs = [args for keyword, args in instructions if keyword == "RUN"]

    assert "python:3.11-slim" in text
    assert any("pip install --require-hashes --no-deps -r requirements.lock" in run for run in runs)
    assert any("pip install --no-deps ." in run for run in runs)

    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users, "the image must switch to a non-root user"
    assert users[-1].split(":")[0] not in {"root", "0"}

    entrypoints = [args for keyword, args in instructions if keyword == "ENTRYPOINT"]
    cmds = [args for keyword, args in instructions if keyword == "CMD"]
    assert json.loads(entrypoints[-1]) == ["order-status"]
    assert json.loads(cmds[-1]) == ["run"]

    envs = " ".join(args for keyword, args in instructions if keyword == "ENV")
    assert "ORDER_STATUS_LOG_FORMAT=json" in envs
    assert "ORDER_STATUS_HTTP_HOST=0.0.0.0" in envs
    port = re.search(r"ORDER_STATUS_HTTP_PORT=(\d+)", envs)
    assert port is not None
    assert [args for keyword, args in instructions if keyword == "EXPOSE"] == [port.group(1)]


def test_dockerignore_keeps_the_build_context_small_but_complete() -> None:
    patterns = {
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".git", "tests", "bench/results"} <= patterns
    # The Dockerfile copies these.
    needed = {"pyproject.toml", "README.md", "requirements.lock", "worker", "schemas"}
    assert not needed & patterns


# --- docker-compose.yml ----------------------------------------------------------------------


def test_compose_has_the_services() -> None:
    services = _compose()["services"]
    assert {"kafka", "kafka-init", "redis", "worker"} <= set(services)


def test_compose_kafka_runs_in_kraft_mode_without_zookeeper() -> None:
    env = _env(_service("kafka"))
    roles = {role.strip() for role in env["KAFKA_PROCESS_ROLES"].split(",")}
    assert roles == {"broker", "controller"}
    assert env["KAFKA_NODE_ID"] == "1"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"]
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert "kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["KAFKA_NUM_PARTITIONS"] == "4"
    assert "zookeeper" not in COMPOSE_FILE.read_text(encoding="utf-8").lower()
    assert "healthcheck" in _service("kafka")
    assert "healthcheck" in _service("redis")


def test_compose_worker_points_at_the_compose_kafka_and_redis(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker = _service("worker")
    env = _env(worker)

    unknown = sorted(set(env) - ACCEPTED_ENV_NAMES)
    assert not unknown, f"worker environment has unknown settings: {unknown}"

    hosts = [server.strip() for server in env["ORDER_STATUS_BOOTSTRAP_SERVERS"].split(",")]
    assert hosts
    assert all(urlsplit(f"//{host}").hostname == "kafka" for host in hosts)
    assert urlsplit(env["REDIS_URL"]).hostname == "redis"

    settings = _settings_from(env, monkeypatch)
    assert settings.producer_idempotence is True
    assert settings.log_format == "json"

    depends_on = worker["depends_on"]
    assert depends_on["kafka-init"]["condition"] == "service_completed_successfully"
    assert depends_on["redis"]["condition"] == "service_healthy"
    assert worker["restart"] == "unless-stopped"
    assert "build" in worker


def test_compose_kafka_init_creates_the_default_topics_by_the_partitioning_rules() -> None:
    init = _service("kafka-init")
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"

    command = init.get("command")
    script = "\n".join(command) if isinstance(command, list) else str(command)
    assert "/opt/kafka/bin/kafka-topics.sh" in script
    count_of = {topic: variable for variable, topic in CREATE_TOPIC.findall(script)}
    assert sorted(count_of) == sorted(Topics().all)

    topics = Topics()
    # The merge takes partition p of co-partitioned topics together: one count each.
    assert len({count_of[topic] for topic in topics.inbound}) == 1
    assert count_of[topics.service_actions] == count_of[topics.billing]
    assert count_of[topics.billing] != count_of[topics.orders], "two rules, two variables"
    counts = _env(init)
    assert all(int(counts[variable]) > 0 for variable in count_of.values())


# --- deploy/ ---------------------------------------------------------------------------------


def test_deploy_has_the_manifests() -> None:
    names = {path.name for path in DEPLOY_YAML}
    expected = {
        "configmap.yaml",
        "secret.example.yaml",
        "deployment.yaml",
        "pdb.yaml",
        "kustomization.yaml",
    }
    assert expected <= names
    assert (DEPLOY_DIR / "README.md").is_file()


@pytest.mark.parametrize("path", DEPLOY_YAML, ids=lambda p: p.name)
def test_deploy_yaml_parses_and_is_namespace_agnostic(path: Path) -> None:
    for doc in _yaml_documents(path):
        assert doc.get("apiVersion")
        assert doc.get("kind")
        assert "namespace" not in (doc.get("metadata") or {})
        assert "namespace" not in doc


def test_kustomization_lists_the_manifests_but_not_the_example_secret() -> None:
    kustomization = _one_object("Kustomization")
    resources = kustomization["resources"]
    assert {"configmap.yaml", "deployment.yaml", "pdb.yaml"} <= set(resources)
    assert "secret.example.yaml" not in resources
    for resource in resources:
        assert (DEPLOY_DIR / resource).is_file(), resource


def test_deployment_runs_the_worker_safely() -> None:
    deployment = _one_object("Deployment")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]

    # The image's ENTRYPOINT is `order-status` (checked above); no command keeps it.
    argv = list(container.get("command") or ["order-status"]) + list(container.get("args") or [])
    assert argv[:2] == ["order-status", "run"]

    assert "replicas" not in spec, "the ScaledObject owns the replica count"
    assert pod["terminationGracePeriodSeconds"] == 30
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][bound])
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()

    env_from = container["envFrom"]
    config_maps = {ref["configMapRef"]["name"] for ref in env_from if "configMapRef" in ref}
    secrets = {ref["secretRef"]["name"] for ref in env_from if "secretRef" in ref}
    assert config_maps == {_one_object("ConfigMap")["metadata"]["name"]}
    assert secrets == {_one_object("Secret")["metadata"]["name"]}


def test_pdb_keeps_one_worker_and_selects_the_deployment_pods() -> None:
    pdb = _one_object("PodDisruptionBudget")
    pod_labels = _one_object("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_secret_example_holds_only_placeholders() -> None:
    secret = _one_object("Secret")
    assert "data" not in secret, "use stringData with placeholders, never encoded values"
    values = secret["stringData"]
    assert "ORDER_STATUS_SASL_PASSWORD" in values
    for key, value in values.items():
        assert "CHANGE-ME" in str(value), f"{key} does not look like a placeholder"


def test_configmap_and_secret_are_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    config = {str(k): str(v) for k, v in _one_object("ConfigMap")["data"].items()}
    secret = {str(k): str(v) for k, v in _one_object("Secret")["stringData"].items()}

    unknown = sorted((set(config) | set(secret)) - ACCEPTED_ENV_NAMES)
    assert not unknown, f"ConfigMap/Secret keys that are not settings: {unknown}"
    assert not {k for k in config if "PASSWORD" in k}, "passwords belong in the Secret"

    settings = _settings_from({**config, **secret}, monkeypatch)
    assert settings.bootstrap_servers == config["ORDER_STATUS_BOOTSTRAP_SERVERS"]
    assert settings.producer_idempotence is True
    assert settings.log_format == "json"
    assert settings.sasl_password is not None
