"""The order status worker: order, work-order, task and service status from Kafka events."""
