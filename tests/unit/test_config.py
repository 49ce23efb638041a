"""Configuration as an operator meets it: errors naming the variable and what it accepts, warnings
for misspelt variables, `run --help`, `--version`, secrets never shown, and a README table that
cannot drift from the model."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from importlib.metadata import version
from pathlib import Path

import pytest
import redis
from redis.asyncio import RedisCluster

from worker.cli import main
from worker.config import (
    ConfigurationError,
    accepted_variables,
    effective_configuration,
    load_settings,
    markdown_table,
    mask_url,
    redis_client,
    settings_documentation,
    unknown_variables,
)
from worker.embedded import embedded_redis
from worker.rules import Profile
from worker.rules.inputs import DEFAULT_JEOPARDY
from worker.settings import Settings
from worker.stages.base import policy

README = Path(__file__).resolve().parents[2] / "README.md"
TABLE = re.compile(r"<!-- settings: begin.*?-->\n(.*?)\n<!-- settings: end -->", re.DOTALL)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in accepted_variables():
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "ORDER_STATUS_LOG_FORMAT",
            "xml",
            "ORDER_STATUS_LOG_FORMAT='xml' is invalid: expected one of json, console",
        ),
        (
            "ORDER_STATUS_DEFAULT_PROFILE",
            "nextian",
            "ORDER_STATUS_DEFAULT_PROFILE='nextian' is invalid: expected one of standard, psa, tmf",
        ),
        (
            "ORDER_STATUS_PRODUCER_IDEMPOTENCE",
            "maybe",
            "ORDER_STATUS_PRODUCER_IDEMPOTENCE='maybe' is invalid: expected true or false",
        ),
        (
            "ORDER_STATUS_BATCH_MAX_RECORDS",
            "0",
            "ORDER_STATUS_BATCH_MAX_RECORDS='0' is invalid: expected an integer > 0",
        ),
        (
            "ORDER_STATUS_HTTP_PORT",
            "70000",
            "ORDER_STATUS_HTTP_PORT='70000' is invalid: expected an integer >= 0 and <= 65535",
        ),
        (
            "ORDER_STATUS_LIVENESS_STALL_S",
            "soon",
            "ORDER_STATUS_LIVENESS_STALL_S='soon' is invalid: expected a number > 0",
        ),
        (
            "ORDER_STATUS_TOPICS__ORDERS",
            "",
            "ORDER_STATUS_TOPICS__ORDERS='' is invalid: expected a non-empty string",
        ),
    ],
)
def test_an_invalid_value_names_the_variable_and_what_it_accepts(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as raised:
        load_settings({})
    assert str(raised.value) == message


def test_every_invalid_value_is_reported_at_once_and_a_secret_is_never_echoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORDER_STATUS_SASL_MECHANISM", "kerberos")
    monkeypatch.setenv("ORDER_STATUS_LOG_LEVEL", "loud")
    with pytest.raises(ConfigurationError) as raised:
        load_settings({})
    lines = str(raised.value).splitlines()
    assert lines == [
        "ORDER_STATUS_SASL_MECHANISM='kerberos' is invalid: expected one of PLAIN, "
        "SCRAM-SHA-256, SCRAM-SHA-512",
        "ORDER_STATUS_LOG_LEVEL='LOUD' is invalid: expected one of DEBUG, INFO, WARNING, ERROR",
    ]


def test_the_cli_prints_the_configuration_error_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ORDER_STATUS_LOG_FORMAT", "xml")
    assert main(["show", "O-1"]) == 2
    error = capsys.readouterr().err
    assert "ORDER_STATUS_LOG_FORMAT='xml' is invalid: expected one of json, console" in error
    assert "Traceback" not in error
    assert "log_format" not in error, "the pydantic field path means nothing to an operator"


def test_log_level_and_format_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDER_STATUS_LOG_LEVEL", "debug")
    monkeypatch.setenv("ORDER_STATUS_LOG_FORMAT", "Console")
    settings = load_settings({}).settings
    assert (settings.log_level, settings.log_format) == ("DEBUG", "console")


def test_an_unknown_order_status_variable_is_warned_about_with_a_suggestion() -> None:
    environ = {
        "ORDER_STATUS_LOG_LEVL": "debug",
        "ORDER_STATUS_REDIS_URL": "redis://elsewhere:6379/0",
        "ORDER_STATUS_TOPICS__ORDER": "x",
        "ORDER_STATUS_FROBNICATE": "1",
        "ORDER_STATUS_LOG_LEVEL": "INFO",
        "PATH": "/usr/bin",
    }
    assert unknown_variables(environ) == [
        "ORDER_STATUS_FROBNICATE is not a setting and is ignored",
        "ORDER_STATUS_LOG_LEVL is not a setting and is ignored; did you mean "
        "ORDER_STATUS_LOG_LEVEL?",
        "ORDER_STATUS_REDIS_URL is not a setting and is ignored; did you mean REDIS_URL?",
        "ORDER_STATUS_TOPICS__ORDER is not a setting and is ignored; did you mean "
        "ORDER_STATUS_TOPICS__ORDERS?",
    ]


def test_load_settings_reports_the_unknown_variables_of_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORDER_STATUS_BATCH_MAX_RECORD", "10")
    warnings = load_settings().warnings
    assert any(w.startswith("ORDER_STATUS_BATCH_MAX_RECORD is not a setting") for w in warnings)


def test_every_setting_is_documented_and_read_from_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    documented = settings_documentation()
    assert all(setting.meaning for setting in documented), "every field needs a description"
    names = {setting.env for setting in documented}
    assert {"REDIS_URL", "ORDER_STATUS_HTTP_PORT", "ORDER_STATUS_TOPICS__ACTIVITY_INPUTS"} <= names
    monkeypatch.setenv("ORDER_STATUS_HTTP_PORT", "9100")
    monkeypatch.setenv("ORDER_STATUS_TOPICS__ACTIVITY_INPUTS", "acme.activity")
    settings = load_settings({}).settings
    assert (settings.http_port, settings.topics.activity_inputs) == (9100, "acme.activity")


def test_run_help_lists_every_setting_with_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", "--help"])
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    for setting in settings_documentation():
        assert f"{setting.env}  (default: {setting.default}; {setting.accepts})" in shown
        assert setting.meaning.split()[0] in shown


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"order-status {version('order-status-worker')}"


def test_the_readme_table_is_the_generated_one() -> None:
    found = TABLE.search(README.read_text(encoding="utf-8"))
    assert found, "README.md lacks the settings table markers"
    assert found.group(1) == markdown_table(), (
        "regenerate the README's configuration table: "
        '.venv/bin/python -c "from worker.config import markdown_table; print(markdown_table())"'
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@redis:6379/0", "redis://:****@redis:6379/0"),
        ("rediss://worker:s3cret@[::1]:6380/2", "rediss://worker:****@[::1]:6380/2"),
        ("redis://redis:6379/0", "redis://redis:6379/0"),
    ],
)
def test_mask_url_hides_the_password(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_the_effective_configuration_masks_every_secret() -> None:
    settings = Settings(
        redis_url="redis://:s3cret@redis:6379/0", sasl_password="hunter2", sasl_username="w"
    )
    shown = effective_configuration(settings)
    assert "s3cret" not in str(shown)
    assert "hunter2" not in str(shown)
    assert shown["ORDER_STATUS_SASL_USERNAME"] == "w"
    assert shown["ORDER_STATUS_TOPICS__ORDERS"] == "fulfillment.orders.v1"


@pytest.fixture
def redis_with_password() -> Iterator[str]:
    with embedded_redis() as url:
        # Set once it answers: the server's readiness check does not authenticate.
        with redis.Redis.from_url(url) as client:
            client.config_set("requirepass", "s3cret")
        yield url.replace("redis://", "redis://:s3cret@")


def test_show_never_prints_the_redis_password(
    redis_with_password: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_with_password)
    assert main(["show", "no-such-order"]) == 1
    printed = capsys.readouterr()
    assert "no order or service no-such-order in Redis at redis://:****@" in printed.err
    assert "s3cret" not in printed.out + printed.err


@pytest.mark.parametrize("cluster", [False, True], ids=["standalone", "cluster"])
def test_the_redis_client_has_the_configured_timeouts(cluster: bool) -> None:
    settings = Settings(
        redis_socket_timeout_s=3.5, redis_connect_timeout_s=1.5, redis_cluster=cluster
    )
    client = redis_client(settings)
    if isinstance(client, RedisCluster):  # each node's connections are made with these
        options = client.connection_kwargs
    else:
        options = client.connection_pool.connection_kwargs
    assert isinstance(client, RedisCluster) is cluster
    assert (options["socket_timeout"], options["socket_connect_timeout"]) == (3.5, 1.5)


def test_jeopardy_thresholds_are_read_per_profile_and_level(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORDER_STATUS_JEOPARDY__PSA__STALLED_TASK_H", "1.5")
    monkeypatch.setenv("ORDER_STATUS_JEOPARDY__PSA__FALLOUT_OPEN_ORDER_H", "0")
    jeopardy = policy(load_settings({}).settings).jeopardy
    assert jeopardy[Profile.PSA].stalled["task"] == timedelta(hours=1.5)
    assert jeopardy[Profile.PSA].fallout_open["order"] is None  # 0: never judged
    assert jeopardy[Profile.STANDARD] == DEFAULT_JEOPARDY
    assert jeopardy[Profile.TMF].stalled["order"] == timedelta(days=7)


def test_a_negative_jeopardy_threshold_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDER_STATUS_JEOPARDY__TMF__FALLOUT_OPEN_TASK_H", "-1")
    with pytest.raises(ConfigurationError, match="ORDER_STATUS_JEOPARDY__TMF__FALLOUT_OPEN_TASK_H"):
        load_settings({})
