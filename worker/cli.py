"""The `order-status` command."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import signal
import sys
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

import structlog

from worker.config import ConfigurationError, help_text, load_settings, mask_url, redis_client
from worker.logs import configure_logging
from worker.render import order_tree, service_view, timeline_line
from worker.settings import Settings
from worker.simulate import simulate
from worker.store.reader import Snapshots

# Python's default (700, 10, 10) collects the youngest generation every 700 container allocations,
# and a batch makes hundreds of thousands; the full collections it leads to walk every cached
# record. Measured at 2,500 events/s: 1.2 s of collections with pauses up to 93 ms, against
# 0.05 s and 11 ms with these thresholds and the start-up objects frozen out of collection.
GC_THRESHOLDS = (10_000, 20, 20)
PACKAGE = "order-status-worker"

log = structlog.get_logger("worker.cli")


def tune_garbage_collection() -> None:
    """Once the worker has started: what exists now lives as long as the process."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def _run(settings: Settings) -> int:
    """The worker until SIGTERM (0: it finished the batch in hand) or a fatal error (1: nothing
    of the failed batch is committed; the orchestrator restarts it and the input is read again)."""
    from worker.app import Worker

    redis = redis_client(settings)
    worker = Worker(settings, redis, serve_http=True)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, worker.request_stop)
    try:
        await worker.start()
        tune_garbage_collection()
        await worker.wait()
    except Exception as error:
        worker.failed(error)
        return 1
    finally:
        await redis.aclose()
    return 0


async def _show(settings: Settings, entity_id: str) -> int:
    """An order's tree, or a service's status, history and orders."""
    redis = redis_client(settings)
    try:
        snapshots = Snapshots(redis, settings.group_id)
        order = await snapshots.order(entity_id)
        service = None if order else await snapshots.service(entity_id)
    finally:
        await redis.aclose()
    if order is not None:
        print(order_tree(order))
    elif service is not None:
        print(service_view(service))
    else:
        where = mask_url(settings.redis_url)
        print(f"no order or service {entity_id} in Redis at {where}", file=sys.stderr)
        return 1
    return 0


def _simulate(settings: Settings, path: Path, as_json: bool, until: datetime | None) -> int:
    with path.open("rb") as lines:
        result = simulate(lines, settings, until=until)
    if as_json:
        print(
            json.dumps(
                {
                    "events": result.emitted,
                    "orders": {oid: r.model_dump(mode="json") for oid, r in result.records.items()},
                    "services": {
                        sid: r.model_dump(mode="json") for sid, r in result.services.items()
                    },
                    "activity": {
                        key: r.model_dump(mode="json") for key, r in result.activity.items()
                    },
                    "invalid": [{"line": line, "error": error} for line, error in result.invalid],
                },
                indent=2,
            )
        )
    else:
        for event in result.emitted:
            print(timeline_line(event))
        for line, error in result.invalid:
            print(f"line {line}: invalid, skipped: {error}")
        for record in result.records.values():
            print()
            print(order_tree(record))
        for service in result.services.values():
            print()
            print(service_view(service))
    return 1 if result.invalid else 0


def _configured_asyncapi(settings: Settings) -> str:
    from schemas.asyncapi import Security, asyncapi_text

    security = Security(settings.security_protocol, settings.sasl_mechanism)
    return asyncapi_text(settings.topics, settings.bootstrap_servers, security)


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone (add Z or an offset)")
    return moment


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="order-status", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {version(PACKAGE)}")
    commands = parser.add_subparsers(dest="command", required=True)
    dev = commands.add_parser("dev", help="run on an embedded broker and Redis with a demo feed")
    dev.add_argument("--once", action="store_true", help="play the demo, print it and exit")
    commands.add_parser(
        "run",
        help="run the worker against the configured broker and Redis",
        description="Run the worker against the configured broker and Redis. Every setting is "
        "an environment variable:",
        epilog=help_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show = commands.add_parser("show", help="print an order (as a tree) or a service from Redis")
    show.add_argument("id")
    sim = commands.add_parser("simulate", help="run a JSONL file of CloudEvents through the rules")
    sim.add_argument("file", type=Path)
    sim.add_argument("--json", action="store_true", help="machine-readable output")
    sim.add_argument(
        "--until",
        type=_moment,
        help="run every timer (term ends, parked events' expiry) due before this time, as the "
        "worker's clock would (RFC 3339, e.g. 2027-01-01T00:00:00Z); default: none after the input",
    )
    schema = commands.add_parser("schemas", help="write the JSON Schema and AsyncAPI documents")
    mode = schema.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="fail if the files are out of date")
    mode.add_argument(
        "--configured",
        action="store_true",
        help="print the AsyncAPI document for the configured servers and topic names instead",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    if args.command == "dev":
        from worker.dev import run_dev

        return asyncio.run(run_dev(args.once))
    try:
        loaded = load_settings()
    except ConfigurationError as error:
        print(f"invalid configuration:\n{error}", file=sys.stderr)
        return 2
    settings = loaded.settings
    configure_logging(settings.log_format, settings.log_level)
    for warning in loaded.warnings:
        log.warning(warning)
    if args.command == "run":
        return asyncio.run(_run(settings))
    if args.command == "show":
        return asyncio.run(_show(settings, args.id))
    if args.command == "simulate":
        return _simulate(settings, args.file, args.json, args.until)
    from schemas.generate import write_documents

    if args.configured:
        print(_configured_asyncapi(settings), end="")
        return 0
    stale = write_documents(check=args.check)
    for name in stale:
        print(f"{name} is out of date: run `order-status schemas`", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
