"""Configuration from the environment (prefix ORDER_STATUS_), with production-safe defaults.

Every field has a description: `order-status run --help` and the README's configuration table are
generated from this model (`worker.config`), so a new setting is documented by adding it here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from schemas.outbound import JeopardyLevel
from schemas.topics import DEFAULT_BOOTSTRAP_SERVERS, Topics
from worker.rules.inputs import DEFAULT_JEOPARDY, LONGEST, JeopardyLimits
from worker.rules.states import Profile
from worker.web.settings import WebSettings

__all__ = ["JeopardySettings", "Settings", "Topics"]

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]

_NAMES: dict[JeopardyLevel, str] = {
    "task": "a task",
    "work_order": "a work order",
    "line_item": "a line item",
    "order": "an order",
}


def _limit(reason: Literal["stalled", "fallout_open"], level: JeopardyLevel) -> Any:
    """A jeopardy threshold in hours, its default from `DEFAULT_JEOPARDY`."""
    default = (DEFAULT_JEOPARDY.stalled if reason == "stalled" else DEFAULT_JEOPARDY.fallout_open)[
        level
    ]
    assert default is not None  # every default threshold is on
    if reason == "stalled":
        under = "" if level == "task" else " of its own or of anything under it"
        meaning = f"the longest {_NAMES[level]} may go without a state change{under}"
    else:
        on = "a task" if level == "task" else f"a task under {_NAMES[level]}"
        meaning = f"the longest a fallout on {on} may stay open"
    description = f"Jeopardy `{reason}` of the profile: {meaning} (hours; 0: never judged)."
    return Field(
        default=default / timedelta(hours=1),
        ge=0,
        le=LONGEST / timedelta(hours=1),
        description=description,
    )


def _hours(limits: Mapping[JeopardyLevel, float]) -> dict[JeopardyLevel, timedelta | None]:
    return {level: timedelta(hours=hours) if hours else None for level, hours in limits.items()}


class JeopardyThresholds(BaseModel):
    """One profile's jeopardy thresholds per level, in hours (DOMAIN.md "Jeopardy")."""

    stalled_task_h: float = _limit("stalled", "task")
    stalled_work_order_h: float = _limit("stalled", "work_order")
    stalled_line_item_h: float = _limit("stalled", "line_item")
    stalled_order_h: float = _limit("stalled", "order")
    fallout_open_task_h: float = _limit("fallout_open", "task")
    fallout_open_work_order_h: float = _limit("fallout_open", "work_order")
    fallout_open_line_item_h: float = _limit("fallout_open", "line_item")
    fallout_open_order_h: float = _limit("fallout_open", "order")

    def limits(self) -> JeopardyLimits:
        return JeopardyLimits(
            stalled=_hours(
                {
                    "task": self.stalled_task_h,
                    "work_order": self.stalled_work_order_h,
                    "line_item": self.stalled_line_item_h,
                    "order": self.stalled_order_h,
                }
            ),
            fallout_open=_hours(
                {
                    "task": self.fallout_open_task_h,
                    "work_order": self.fallout_open_work_order_h,
                    "line_item": self.fallout_open_line_item_h,
                    "order": self.fallout_open_order_h,
                }
            ),
        )


class JeopardySettings(BaseModel):
    """The thresholds of each profile: ORDER_STATUS_JEOPARDY__<PROFILE>__<THRESHOLD>."""

    standard: JeopardyThresholds = JeopardyThresholds()
    psa: JeopardyThresholds = JeopardyThresholds()
    tmf: JeopardyThresholds = JeopardyThresholds()

    def limits(self) -> dict[Profile, JeopardyLimits]:
        return {
            Profile.STANDARD: self.standard.limits(),
            Profile.PSA: self.psa.limits(),
            Profile.TMF: self.tmf.limits(),
        }


class Settings(BaseSettings):
    """Read from ORDER_STATUS_<NAME>; topics as ORDER_STATUS_TOPICS__ORDERS and so on."""

    model_config = SettingsConfigDict(
        env_prefix="ORDER_STATUS_", env_nested_delimiter="__", extra="ignore"
    )

    bootstrap_servers: str = Field(
        default=DEFAULT_BOOTSTRAP_SERVERS,
        min_length=1,
        description="Kafka bootstrap servers, comma-separated host:port.",
    )
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        validation_alias="REDIS_URL",
        description="Redis, standalone or (with ORDER_STATUS_REDIS_CLUSTER) a node of a "
        "cluster. The conventional REDIS_URL: ORDER_STATUS_REDIS_URL is not read. Never logged "
        "with its password.",
    )
    redis_cluster: bool = Field(
        default=False,
        description="REDIS_URL is a node of a Redis Cluster (any one: the client learns the others "
        "and follows slot moves and failovers). Each partition's keys share one hash tag, so every "
        "batch write is one script on the node that holds its slot. A standalone client pointed at "
        "a cluster stops at start with an error saying to set this.",
    )
    group_id: str = Field(
        default="order-status-worker",
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Consumer group of the orders stage; the services and activity stages use "
        "`<group>.services` and `<group>.activity`. Also the namespace of the worker's keys in "
        "Redis. Run more instances with the same group to split the partitions.",
    )
    default_profile: Profile = Field(
        default=Profile.STANDARD,
        description="Rollup profile of an order whose order.created names none.",
    )
    topics: Topics = Field(default=Topics(), description="Topic names.")

    producer_idempotence: bool = Field(
        default=True,
        description="Idempotent producer: keep it on against Apache Kafka (the local Tansu "
        "broker cannot initialise producer ids and needs false).",
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="How the worker talks to Kafka."
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None, description="SASL mechanism, with a SASL_* security protocol."
    )
    sasl_username: str | None = Field(default=None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(
        default=None, description="SASL password (a secret: never logged)."
    )
    ssl_cafile: str | None = Field(
        default=None, description="CA bundle for SSL and SASL_SSL, when the broker's CA is private."
    )

    batch_max_records: int = Field(
        default=1000, gt=0, description="Most records one batch takes from a fetch."
    )
    max_task_idle_ms: int = Field(
        default=20,
        ge=0,
        description="How long a stage waits for a lagging co-partition (an empty input partition "
        "that may still deliver an earlier event) before it applies the others' events without it, "
        "as Kafka Streams' max.task.idle.ms; also how far out of event-time order one order's "
        "events may reach the broker and still be applied in order (later ones are applied as they "
        "come, counted as late).",
    )
    idle_timeout_ms: int = Field(
        default=1000,
        gt=0,
        description="After how long without input a stage's partition counts as idle: the next "
        "stage stops waiting for it (what it sends later is applied as it comes). Also how often "
        "each stage repeats its watermarks to the next, moved or not: a stage taken up again (a "
        "restart, a rebalance) waits at most this long to hear from an idle upstream.",
    )
    clock_skew_s: float = Field(
        default=300.0,
        gt=0,
        description="How far an event's time may be ahead of the worker's clock; further ahead "
        "it is dead-lettered (it would make every later update of its entity look stale).",
    )
    commit_interval_ms: int = Field(
        default=1000,
        ge=0,
        description="How often offsets are committed to Kafka (for lag monitoring; the state in "
        "Redis holds the offsets it was computed from).",
    )
    max_record_bytes: int = Field(
        default=1_048_576,
        gt=4096,
        description="The largest record the broker accepts (message.max.bytes): a dead letter "
        "that would be larger is cut down (its payload referenced by topic, partition and offset).",
    )
    max_poll_interval_ms: int = Field(
        default=300_000,
        gt=0,
        description="How long a batch may take before the consumer leaves its group (Kafka's "
        "max.poll.interval.ms); a stage that lost its group rejoins and resumes from Redis.",
    )
    shutdown_grace_s: float = Field(
        default=15.0,
        gt=0,
        description="On SIGTERM, how long the batch in hand may take to finish.",
    )
    stages: Annotated[list[Literal["orders", "services", "activity"]], NoDecode] = Field(
        default=["orders", "services", "activity"],
        min_length=1,
        description="The stages this process runs (comma-separated): all by default; a stage "
        "may also run in a deployment of its own, scaled by its own partitions.",
    )
    create_topics: bool = Field(
        default=False,
        description="Create missing topics at start (with the partition counts of "
        "ORDER_STATUS_TOPIC_PARTITIONS); else a missing topic stops the worker with a clear error.",
    )
    topic_partitions: int = Field(
        default=4, gt=0, description="Partitions of topics the worker creates."
    )
    snapshot_cache_entries: int = Field(
        default=1000,
        ge=0,
        description="Records of each kind (orders, services, activity) kept parsed in memory, "
        "so an entity touched again is not read and parsed again: about 56 KiB for an average "
        "benchmark order; 0 turns the cache off.",
    )
    batch_timeout_ms: int = Field(
        default=50, ge=0, description="How long a batch waits for records before it is processed."
    )
    # aiokafka's 500 ms default becomes the latency floor on brokers that do not answer a waiting
    # fetch as soon as data arrives.
    fetch_max_wait_ms: int = Field(
        default=50, ge=0, description="How long a fetch may wait at the broker for data."
    )
    session_timeout_ms: int = Field(
        default=10_000,
        gt=0,
        description="Consumer group session timeout: an instance silent for this long loses its "
        "partitions to the others.",
    )
    heartbeat_interval_ms: int = Field(
        default=3_000,
        gt=0,
        description="How often the consumer tells the group it is alive (well below the session "
        "timeout).",
    )

    park_timeout_s: float = Field(
        default=600.0,
        gt=0,
        description="How long an event waits for an order or parent it names before it is "
        "dead-lettered.",
    )
    jeopardy: JeopardySettings = Field(
        default=JeopardySettings(), description="Jeopardy thresholds per profile and level."
    )

    redis_socket_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Longest wait for a Redis reply before the command fails and the batch is "
        "retried (a Redis that stops answering must not hang a batch).",
    )
    redis_connect_timeout_s: float = Field(
        default=5.0, gt=0, description="Longest wait for a connection to Redis."
    )
    startup_deadline_s: float = Field(
        default=60.0,
        gt=0,
        description="How long start-up retries an unreachable broker or Redis before the worker "
        "exits with an error naming the address.",
    )

    http_host: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="Address of the HTTP server for /metrics, /health/live, /health/ready and "
        "the plan view (0.0.0.0 in a container, so probes and Prometheus reach it).",
    )
    http_port: int = Field(
        default=8080,
        ge=0,
        le=65535,
        description="Port of the HTTP server; 0 picks a free port (the start-up line says which).",
    )
    web: WebSettings = Field(
        default=WebSettings(),
        description="Who may read the plan view served beside the metrics (issue 15).",
    )
    liveness_stall_s: float = Field(
        default=120.0,
        gt=0,
        description="/health/live fails when a stage has lag but finished no batch for this "
        "long: a wedged worker is restarted.",
    )
    health_check_timeout_s: float = Field(
        default=2.0,
        gt=0,
        description="/health/ready fails when Redis or the broker does not answer within this.",
    )
    progress_log_interval_s: float = Field(
        default=60.0,
        gt=0,
        description="How often an INFO line reports events/s, lag, dead letters and refusals.",
    )

    log_format: Literal["json", "console"] = Field(
        default="json", description="JSON lines in production, console for people."
    )
    log_level: LogLevel = Field(default="INFO", description="Least severe level logged.")

    @field_validator("log_level", "security_protocol", mode="before")
    @classmethod
    def _upper_case(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("stages", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return [part.strip() for part in value.split(",")] if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value
