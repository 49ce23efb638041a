"""The topics a deployment needs and the partition counts that co-partitioning requires, checked
(or created) at start: a wrong count would silently send one entity's events to two partitions."""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from worker.engine.errors import Fatal
from worker.settings import Settings

log = structlog.get_logger("worker.topology")


@dataclass(frozen=True, slots=True)
class Partitions:
    """The groups of each stage: partition counts of its input topics."""

    orders: int
    services: int
    activity: int


async def ensure_topics(settings: Settings, admin: AIOKafkaAdminClient) -> Partitions:
    topics = settings.topics
    counts = await _describe(admin, topics.all)
    missing = [topic for topic in topics.all if topic not in counts]
    if missing:
        if not settings.create_topics:
            raise Fatal(
                f"topics missing on the broker: {', '.join(missing)}. Create them (see README, "
                "'Topics') or set ORDER_STATUS_CREATE_TOPICS=true"
            )
        await _create(settings, admin, missing, counts)
        counts = await _describe(admin, topics.all)
    return _check(settings, counts)


async def _describe(admin: AIOKafkaAdminClient, names: tuple[str, ...]) -> dict[str, int]:
    described = await admin.describe_topics(list(names))
    return {
        topic["topic"]: len(topic["partitions"])
        for topic in described
        if topic.get("error_code", 0) == 0 and topic.get("partitions")
    }


async def _create(
    settings: Settings, admin: AIOKafkaAdminClient, missing: list[str], counts: dict[str, int]
) -> None:
    topics = settings.topics
    default = settings.topic_partitions
    fulfillment = next((counts[t] for t in topics.inbound if t in counts), default)
    billing = counts.get(topics.billing, counts.get(topics.service_actions, default))
    wanted = dict.fromkeys(missing, default)
    for topic in topics.inbound:
        wanted[topic] = fulfillment
    for topic in (topics.billing, topics.service_actions):
        wanted[topic] = billing
    await admin.create_topics(
        [NewTopic(topic, wanted[topic], replication_factor=-1) for topic in missing]
    )
    log.info("topics created", topics={topic: wanted[topic] for topic in missing})


def _check(settings: Settings, counts: dict[str, int]) -> Partitions:
    topics = settings.topics
    problems = []
    fulfillment = {topic: counts[topic] for topic in topics.inbound}
    if len(set(fulfillment.values())) != 1:
        problems.append(
            f"the fulfillment topics must have one partition count (they are co-partitioned by "
            f"order id), but have {fulfillment}"
        )
    if counts[topics.billing] != counts[topics.service_actions]:
        problems.append(
            f"{topics.service_actions} must have the partition count of {topics.billing} "
            f"(co-partitioned by service id): {counts[topics.service_actions]} against "
            f"{counts[topics.billing]}"
        )
    if problems:
        raise Fatal("; ".join(problems))
    return Partitions(
        orders=counts[topics.orders],
        services=counts[topics.billing],
        activity=counts[topics.activity_inputs],
    )
