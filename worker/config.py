"""Loading `Settings` from the environment for people: errors that name the environment variable
and what it accepts, a warning for every ORDER_STATUS_* variable that is no setting, and the
documentation of every setting (`order-status run --help`, the README's table) generated from the
model, so a new setting documents itself."""

from __future__ import annotations

import difflib
import enum
import os
import textwrap
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

import annotated_types
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.connection import HiredisRespSerializer
from redis.typing import EncodableT

from worker.settings import Settings

C = TypeVar("C", bound=AbstractConnection)

ENV_PREFIX = str(Settings.model_config.get("env_prefix") or "")
NESTED_DELIMITER = str(Settings.model_config.get("env_nested_delimiter") or "__")
MASK = "****"


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting as an operator sees it."""

    path: tuple[str, ...]
    """Where it is in `Settings` (("topics", "orders") for a topic name)."""
    env: str
    default: str
    accepts: str
    meaning: str
    secret: bool


class ConfigurationError(ValueError):
    """Settings that cannot be used; the message names each variable and what it accepts."""


@dataclass(frozen=True, slots=True)
class Loaded:
    settings: Settings
    warnings: list[str]
    """One line per ORDER_STATUS_* variable that is no setting, with a suggestion where one is
    close: the caller logs them once logging is configured."""


def load_settings(environ: Mapping[str, str] | None = None) -> Loaded:
    """Settings from the process environment, or raise `ConfigurationError`. `environ` is what
    the unknown-variable check reads (the process environment by default)."""
    try:
        settings = Settings()
    except ValidationError as error:
        raise ConfigurationError(
            "\n".join(_explain(issue) for issue in error.errors(include_url=False))
        ) from None
    return Loaded(settings, unknown_variables(os.environ if environ is None else environ))


def redis_client(settings: Settings) -> Redis | RedisCluster:
    """Redis at REDIS_URL, standalone or cluster (ORDER_STATUS_REDIS_CLUSTER), with the
    configured timeouts: a Redis that stops answering fails the command (and the batch retries)
    instead of hanging it. Its connections pack commands with hiredis (`HiredisPacking`)."""
    timeout, connect_timeout = settings.redis_socket_timeout_s, settings.redis_connect_timeout_s
    if settings.redis_cluster:
        cluster = RedisCluster.from_url(
            settings.redis_url, socket_timeout=timeout, socket_connect_timeout=connect_timeout
        )
        # Every node's connections are made from these, the nodes found later included.
        packing = _hiredis_packing(cluster.connection_kwargs["connection_class"])
        cluster.connection_kwargs["connection_class"] = packing
        for node in cluster.startup_nodes:
            node.connection_class = packing
        return cluster
    client = Redis.from_url(
        settings.redis_url, socket_timeout=timeout, socket_connect_timeout=connect_timeout
    )
    pool = client.connection_pool
    pool.connection_class = _hiredis_packing(pool.connection_class)
    return client


def _hiredis_packing(chosen: type[C]) -> type[C]:
    """The connection class chosen by the URL's scheme (TCP, TLS or a Unix socket), packing with
    hiredis."""
    return type(f"HiredisPacking{chosen.__name__}", (HiredisPacking, chosen), {})


class HiredisPacking:
    """Commands packed by hiredis, as redis-py's sync client does; its asyncio connections pack in
    Python, which costs five to six times as much on the commit script's hundreds of arguments
    (BENCHMARKS.md). The bytes on the wire are the same."""

    _serializer = HiredisRespSerializer()

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        # redis-py annotates each argument of `pack` as a list; it takes what pack_command takes.
        packed: list[bytes] = self._serializer.pack(*args)  # type: ignore[arg-type]
        return packed


def settings_documentation() -> list[Setting]:
    """Every setting, in the model's order, nested models (topics) expanded."""
    return list(_walk(Settings.model_fields, (), ENV_PREFIX))


def accepted_variables() -> frozenset[str]:
    """Every environment variable name a setting is read from (upper case)."""
    nested = {
        ENV_PREFIX + name.upper()
        for name, field in Settings.model_fields.items()
        if _model(field.annotation) is not None
    }
    return frozenset({setting.env for setting in settings_documentation()} | nested)


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    accepted = accepted_variables()
    # Compared without the prefix, so ORDER_STATUS_REDIS_URL finds REDIS_URL.
    by_stem = {name.removeprefix(ENV_PREFIX): name for name in accepted}
    warnings = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in accepted:
            continue
        close = difflib.get_close_matches(upper.removeprefix(ENV_PREFIX), by_stem, n=1, cutoff=0.6)
        hint = f"; did you mean {by_stem[close[0]]}?" if close else ""
        warnings.append(f"{name} is not a setting and is ignored{hint}")
    return warnings


def help_text() -> str:
    """Every setting with its variable, default, accepted values and meaning, for --help."""
    indent = " " * 6
    blocks = [
        f"  {s.env}  (default: {s.default}; {s.accepts})\n"
        + textwrap.fill(s.meaning, 96, initial_indent=indent, subsequent_indent=indent)
        for s in settings_documentation()
    ]
    return "settings (environment variables):\n" + "\n".join(blocks)


def markdown_table() -> str:
    """The README's configuration table."""
    rows = [
        f"| `{s.env}` | {_code(s.default)} | {s.meaning} ({s.accepts}) |"
        for s in settings_documentation()
    ]
    return "\n".join(["| variable | default | meaning |", "|---|---|---|", *rows])


def mask_url(url: str) -> str:
    """The URL with its password (if any) replaced, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}{port}"))


def effective_configuration(settings: Settings) -> dict[str, Any]:
    """Every setting's value by variable name, secrets masked: the start-up log line."""
    values: dict[str, Any] = {}
    for setting in settings_documentation():
        value: Any = settings
        for part in setting.path:
            value = getattr(value, part)
        if isinstance(value, SecretStr):
            value = MASK
        elif isinstance(value, enum.Enum):
            value = value.value
        elif setting.env == "REDIS_URL":
            value = mask_url(value)
        values[setting.env] = value
    return values


def _walk(fields: Mapping[str, FieldInfo], path: tuple[str, ...], env: str) -> Iterator[Setting]:
    for name, field in fields.items():
        model = _model(field.annotation)
        if model is not None:
            yield from _walk(
                model.model_fields, (*path, name), f"{env}{name.upper()}{NESTED_DELIMITER}"
            )
            continue
        alias = field.validation_alias
        yield Setting(
            path=(*path, name),
            env=alias.upper() if isinstance(alias, str) else f"{env}{name.upper()}",
            default=_default_text(field.default),
            accepts=_accepts(field),
            meaning=field.description or "",
            secret=SecretStr in _members(field.annotation),
        )


def _model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _members(annotation: Any) -> tuple[Any, ...]:
    """The types of a union (X | None gives X and NoneType), or the type itself."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _default_text(default: Any) -> str:
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, enum.Enum):
        return str(default.value)
    return str(default)


def _accepts(field: FieldInfo) -> str:
    members = [member for member in _members(field.annotation) if member is not type(None)]
    choices: list[str] = []
    for member in members:
        if typing.get_origin(member) is Literal:
            choices.extend(str(value) for value in typing.get_args(member))
        elif isinstance(member, type) and issubclass(member, enum.Enum):
            choices.extend(str(item.value) for item in member)
    if choices:
        return "one of " + ", ".join(choices)
    kind = members[0] if members else str
    if kind is bool:
        return "true or false"
    bounds = " and".join(_bound(constraint) for constraint in field.metadata)
    if kind is int:
        return f"an integer{bounds}"
    if kind is float:
        return f"a number{bounds}"
    return "a non-empty string" if any(_min_length(c) for c in field.metadata) else "a string"


def _bound(constraint: object) -> str:
    if isinstance(constraint, annotated_types.Gt):
        return f" > {constraint.gt}"
    if isinstance(constraint, annotated_types.Ge):
        return f" >= {constraint.ge}"
    if isinstance(constraint, annotated_types.Le):
        return f" <= {constraint.le}"
    if isinstance(constraint, annotated_types.Lt):
        return f" < {constraint.lt}"
    return ""


def _min_length(constraint: object) -> bool:
    return isinstance(constraint, annotated_types.MinLen) and constraint.min_length > 0


def _by_location() -> dict[tuple[str, ...], Setting]:
    located = {}
    for setting in settings_documentation():
        located[setting.path] = setting
        located[(setting.env,)] = setting  # an aliased field (REDIS_URL) is located by its alias
    return located


def _explain(issue: ErrorDetails) -> str:
    location = tuple(str(part) for part in issue["loc"])
    setting = _by_location().get(location)
    if setting is None:  # a nested model given whole as JSON (ORDER_STATUS_TOPICS)
        return f"{ENV_PREFIX}{NESTED_DELIMITER.join(location).upper()}: {issue['msg']}"
    shown = MASK if setting.secret else repr(issue["input"])
    return f"{setting.env}={shown} is invalid: expected {setting.accepts}"


def _code(text: str) -> str:
    return "unset" if text == "unset" else f"`{text}`"
