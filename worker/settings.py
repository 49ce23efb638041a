"""Configuration from the environment (prefix ORDER_STATUS_), with production-safe defaults."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker.rules.states import Profile


class Topics(BaseModel):
    orders: str = "fulfillment.orders.v1"
    work_orders: str = "fulfillment.work-orders.v1"
    tasks: str = "fulfillment.tasks.v1"
    billing: str = "billing.services.v1"
    order_status: str = "fulfillment.order-status.v1"
    service_status: str = "fulfillment.service-status.v1"
    ops: str = "fulfillment.ops.v1"
    dead_letter: str = "fulfillment.dead-letter.v1"
    # Internal: the order stage tells the service stage what line items did, keyed by service id.
    service_actions: str = "fulfillment.service-actions.v1"

    @property
    def inbound(self) -> tuple[str, str, str]:
        return (self.orders, self.work_orders, self.tasks)

    @property
    def all(self) -> tuple[str, ...]:
        return tuple(self.model_dump().values())

    def for_event(self, event_type: str) -> str:
        """The inbound topic an upstream system publishes this event type on (CONTRACT.md)."""
        family = event_type.split(".", 1)[0]
        topics = {
            "order": self.orders,
            "workorder": self.work_orders,
            "task": self.tasks,
            "service": self.billing,
        }
        if family not in topics:
            raise ValueError(f"no inbound topic carries events of type {event_type!r}")
        return topics[family]


class Settings(BaseSettings):
    """Read from ORDER_STATUS_<NAME>; topics as ORDER_STATUS_TOPICS__ORDERS and so on."""

    model_config = SettingsConfigDict(
        env_prefix="ORDER_STATUS_", env_nested_delimiter="__", extra="ignore"
    )

    bootstrap_servers: str = "127.0.0.1:9092"
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        validation_alias="REDIS_URL",
        description="The conventional REDIS_URL; ORDER_STATUS_REDIS_URL is not read.",
    )
    group_id: str = "order-status-worker"
    default_profile: Profile = Profile.STANDARD
    topics: Topics = Topics()

    # Keep idempotence on against Apache Kafka; the local Tansu cannot initialise producer ids.
    producer_idempotence: bool = True
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None

    batch_max_records: int = Field(default=1000, gt=0)
    snapshot_cache_entries: int = Field(
        default=1000,
        ge=0,
        description="Records of each kind (orders, services, activity) kept parsed in memory, "
        "so an entity touched again is not read and parsed again: about 56 KiB for an average "
        "benchmark order.",
    )
    batch_timeout_ms: int = Field(default=50, ge=0)
    # How long a fetch may wait at the broker for data: aiokafka's 500 ms default becomes the
    # latency floor on brokers that do not answer a waiting fetch as soon as data arrives.
    fetch_max_wait_ms: int = Field(default=50, ge=0)
    session_timeout_ms: int = Field(default=10_000, gt=0)
    heartbeat_interval_ms: int = Field(default=3_000, gt=0)

    park_timeout_s: float = Field(
        default=600.0,
        gt=0,
        description="How long an event waits for an order or parent it names before it is "
        "dead-lettered.",
    )
    expiry_interval_s: float = Field(
        default=30.0, gt=0, description="How often term ends are checked."
    )

    log_format: Literal["json", "console"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
