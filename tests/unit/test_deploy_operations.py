"""The operations side of deploy/ and docker-compose.yml, offline: the manifests validated against
the Kubernetes schemas (core kinds with kubernetes-validate; KEDA's and the Prometheus Operator's
kinds against their published CRD schemas, vendored in tests/unit/crd_schemas), probes, scraping
and scaling consistent with the worker's settings, Redis persistence, and a Grafana dashboard
built from the worker's metric names."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from tests.unit.test_deploy_files import (
    COMPOSE_FILE,
    DEPLOY_DIR,
    _env,
    _one_object,
    _service,
    _yaml_documents,
)
from worker.observe import Metrics

KUBERNETES_VERSION = "1.37.0"
CRD_SCHEMAS = Path(__file__).parent / "crd_schemas"
REDIS_DIR = DEPLOY_DIR / "redis"
REDIS_CLUSTER_DIR = DEPLOY_DIR / "redis-cluster"
DASHBOARD = DEPLOY_DIR / "grafana-dashboard.json"
MANIFESTS = [
    (path, doc)
    for directory in (DEPLOY_DIR, REDIS_DIR, REDIS_CLUSTER_DIR)
    for path in sorted(directory.glob("*.yaml"))
    for doc in _yaml_documents(path)
    if doc["kind"] != "Kustomization"  # kustomize's own file, not an API object
]


def _crd_schema(kind: str, api_version: str) -> dict[str, Any] | None:
    group, _, version = api_version.rpartition("/")
    path = CRD_SCHEMAS / f"{kind.lower()}_{group}_{version}.json"
    return _closed(json.loads(path.read_text())) if path.exists() else None


def _closed(schema: Any) -> Any:
    """The API server drops unknown fields of a custom resource silently; closing every object
    that lists its properties turns a misspelt field into an error here."""
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {key: _closed(value) for key, value in schema.items()}
    if (
        isinstance(schema.get("properties"), dict)
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        closed["additionalProperties"] = False
    return closed


def _validate(doc: dict[str, Any]) -> None:
    schema = _crd_schema(doc["kind"], doc["apiVersion"])
    if schema is None:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    else:
        jsonschema.Draft4Validator(schema).validate(doc)


@pytest.mark.parametrize(
    "doc", [doc for _, doc in MANIFESTS], ids=[f"{p.name}:{d['kind']}" for p, d in MANIFESTS]
)
def test_every_manifest_is_valid_by_its_kubernetes_schema(doc: dict[str, Any]) -> None:
    _validate(doc)


def test_every_custom_kind_has_its_schema() -> None:
    custom = {doc["kind"] for _, doc in MANIFESTS if "." in doc["apiVersion"].split("/")[0]}
    assert custom == {"ScaledObject", "TriggerAuthentication", "ServiceMonitor"}
    for _, doc in MANIFESTS:
        if doc["kind"] in custom:
            assert _crd_schema(doc["kind"], doc["apiVersion"]) is not None, doc["kind"]


@pytest.mark.parametrize(
    ("kind", "path", "typo"),
    [
        ("Deployment", ("spec", "template", "spec", "containers", 0), "livenesProbe"),
        ("ScaledObject", ("spec",), "maxReplicas"),
        ("ServiceMonitor", ("spec", "endpoints", 0), "intervall"),
    ],
)
def test_the_validation_finds_a_misspelt_field(
    kind: str, path: tuple[str | int, ...], typo: str
) -> None:
    doc = json.loads(json.dumps(_one_object(kind)))
    node: Any = doc
    for part in path:
        node = node[part]
    node[typo] = node.get("x", 1)
    with pytest.raises((jsonschema.ValidationError, kubernetes_validate.ValidationError)):
        _validate(doc)


def _config() -> dict[str, str]:
    return {str(k): str(v) for k, v in _one_object("ConfigMap")["data"].items()}


def _container() -> dict[str, Any]:
    (container,) = _one_object("Deployment")["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def test_probes_and_scraping_reach_the_workers_http_server() -> None:
    config = _config()
    assert config["ORDER_STATUS_HTTP_HOST"] == "0.0.0.0", "probes come from outside the pod"
    port = int(config["ORDER_STATUS_HTTP_PORT"])
    container = _container()
    (http,) = container["ports"]
    assert (http["name"], http["containerPort"]) == ("http", port)
    assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    readiness_timeout = float(config["ORDER_STATUS_HEALTH_CHECK_TIMEOUT_S"])
    assert container["readinessProbe"]["timeoutSeconds"] > readiness_timeout

    pod = _one_object("Deployment")["spec"]["template"]["metadata"]
    assert pod["annotations"]["prometheus.io/scrape"] == "true"
    assert pod["annotations"]["prometheus.io/port"] == str(port)
    assert pod["annotations"]["prometheus.io/path"] == "/metrics"

    service, monitor = _one_object("Service"), _one_object("ServiceMonitor")
    assert service["spec"]["selector"].items() <= pod["labels"].items()
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    assert [p["name"] for p in service["spec"]["ports"]] == ["http"]


def test_keda_scales_on_the_lag_of_the_three_groups_up_to_the_partition_count() -> None:
    config = _config()
    scaled = _one_object("ScaledObject")["spec"]
    assert scaled["scaleTargetRef"]["name"] == _one_object("Deployment")["metadata"]["name"]
    group = config["ORDER_STATUS_GROUP_ID"]
    triggers = scaled["triggers"]
    assert {t["metadata"]["consumerGroup"] for t in triggers} == {
        group,
        f"{group}.services",
        f"{group}.activity",
    }
    fulfillment_partitions = int(_env(_service("kafka-init"))["FULFILLMENT_PARTITIONS"])
    assert scaled["maxReplicaCount"] == fulfillment_partitions
    assert scaled["minReplicaCount"] > _one_object("PodDisruptionBudget")["spec"]["minAvailable"]
    auth = _one_object("TriggerAuthentication")
    for trigger in triggers:
        assert trigger["type"] == "kafka"
        assert trigger["metadata"]["bootstrapServers"] == config["ORDER_STATUS_BOOTSTRAP_SERVERS"]
        assert trigger["metadata"]["sasl"] == "scram_sha512"
        assert config["ORDER_STATUS_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    assert {ref["containerName"] for ref in auth["spec"]["env"]} == {_container()["name"]}


def test_redis_keeps_an_append_only_file_synced_every_second() -> None:
    command = _service("redis")["command"]
    flags = dict(zip(command[1::2], command[2::2], strict=True))
    assert flags["--appendonly"] == "yes"
    assert flags["--appendfsync"] == "everysec"
    assert flags["--maxmemory-policy"] == "noeviction"

    for directory in (REDIS_DIR, REDIS_CLUSTER_DIR):
        lines = _redis_conf(directory)
        assert (lines["appendonly"], lines["appendfsync"]) == ("yes", "everysec"), directory.name
        assert lines["maxmemory-policy"] == "noeviction", directory.name
        statefulset = _in(directory, "StatefulSet")
        assert statefulset["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
        (mount,) = [
            m
            for m in statefulset["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
            if m["name"] == "data"
        ]
        assert mount["mountPath"] == lines["dir"], directory.name


def _in(directory: Path, kind: str) -> dict[str, Any]:
    """The one object of a kind in a directory of deploy/."""
    (found,) = [doc for path, doc in MANIFESTS if path.parent == directory and doc["kind"] == kind]
    return found


def _redis_conf(directory: Path) -> dict[str, str]:
    """The directives of the redis.conf in a directory's ConfigMap."""
    conf = _in(directory, "ConfigMap")["data"]["redis.conf"]
    return {
        line.split()[0]: line.split()[1]
        for line in conf.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }


def test_the_redis_cluster_has_three_primaries_with_a_replica_each_and_the_worker_knows() -> None:
    lines = _redis_conf(REDIS_CLUSTER_DIR)
    assert lines["cluster-enabled"] == "yes"
    assert lines["cluster-config-file"].startswith(lines["dir"])  # kept over a restart
    statefulset, service = _in(REDIS_CLUSTER_DIR, "StatefulSet"), _in(REDIS_CLUSTER_DIR, "Service")
    script = _in(REDIS_CLUSTER_DIR, "Job")["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "--cluster-replicas 1" in script[-1]
    assert f"for n in {' '.join(str(n) for n in range(6))};" in script[-1]
    assert statefulset["spec"]["replicas"] == 6  # 3 primaries x (1 + 1 replica)
    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None"
    ports = {port["name"]: port["port"] for port in service["spec"]["ports"]}
    assert ports == {"redis": 6379, "bus": 16379}
    # The worker's ConfigMap names the setting that turns the cluster client on.
    assert _config()["ORDER_STATUS_REDIS_CLUSTER"] in ("true", "false")


def test_compose_has_healthchecks_for_kafka_redis_and_the_worker() -> None:
    for name in ("kafka", "redis", "worker"):
        assert _service(name)["healthcheck"]["test"], name
    worker = _service("worker")
    env = _env(worker)
    port = env["ORDER_STATUS_HTTP_PORT"]
    assert env["ORDER_STATUS_HTTP_HOST"] == "0.0.0.0"
    assert f"127.0.0.1:{port}/health/ready" in " ".join(worker["healthcheck"]["test"])
    assert f"{port}:{port}" in worker["ports"]
    assert "appendonly" in COMPOSE_FILE.read_text()


# --- the Grafana dashboard -------------------------------------------------------------------

METRIC = re.compile(r"\b(?:order_status|process)_[a-z_]+")


def _dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def _exposed_samples() -> set[str]:
    metrics = Metrics()
    metrics.consumed("orders", "t", 1)  # labelled families expose samples once used
    return {
        sample.name
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name
    } | {
        f"{family.name}{suffix}"
        for family in metrics.registry.collect()
        for suffix in ("_total", "_bucket", "_sum", "_count", "")
    }


def test_the_dashboard_is_an_importable_grafana_dashboard() -> None:
    dashboard = _dashboard()
    assert dashboard["title"]
    assert dashboard["uid"]
    assert dashboard["schemaVersion"] >= 36
    assert "__inputs" not in dashboard, "no export-time placeholders: it imports as it is"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"

    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]


def test_the_dashboard_is_built_from_the_workers_metric_names() -> None:
    text = DASHBOARD.read_text()
    used = set(METRIC.findall(text))
    exposed = _exposed_samples()
    assert used - exposed == set(), "the dashboard names metrics the worker does not expose"
    families = {f.name for f in Metrics().registry.collect() if f.name.startswith("order_")}
    missing = {name for name in families if not any(u.startswith(name) for u in used)}
    assert missing == set(), "every instrument has a panel"
