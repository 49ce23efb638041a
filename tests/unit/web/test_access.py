"""Who may read the plan: open by default; a bearer token, basic-auth credentials or both when
set; the security headers on every answer; ids accepted in URLs."""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from tests.unit.web.client import TestClient, plan_client
from tests.web.fake_reader import FakeReader, Feed, OrderEvents, order_in_fallout
from worker.web import WebSettings
from worker.web.access import SECURITY_HEADERS
from worker.web.ids import id_path, is_valid_id

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def reader() -> FakeReader:
    reader = FakeReader()
    Feed(reader).send(*order_in_fallout(OrderEvents("O-1")))
    return reader


def basic(username: str, password: str) -> dict[str, str]:
    credentials = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"authorization": f"Basic {credentials}"}


BEARER = {"authorization": f"Bearer {TOKEN}"}
PATHS = ["/", "/orders/O-1", "/api/orders/O-1", "/services/SVC-1", "/static/plan.css"]


@pytest.mark.parametrize("path", PATHS)
def test_without_settings_the_plan_is_open_and_sends_its_security_headers(
    reader: FakeReader, path: str
) -> None:
    answer = plan_client(reader).get(path)

    assert answer.status_code == 200
    for name, value in SECURITY_HEADERS.items():
        assert answer.headers[name] == value
    assert "script-src 'self';" in answer.headers["content-security-policy"]


@pytest.fixture(scope="module")
def token_client(reader: FakeReader) -> TestClient:
    return plan_client(reader, WebSettings(bearer_token=TOKEN))


@pytest.mark.parametrize("path", [*PATHS, "/orders/O-1/live", "/search?q=O-1"])
def test_with_a_token_every_route_wants_it(token_client: TestClient, path: str) -> None:
    refused = token_client.get(path)

    assert refused.status_code == 401
    assert refused.headers.get_list("www-authenticate") == ['Bearer realm="order status"']
    assert refused.headers["x-content-type-options"] == "nosniff"
    assert "O-1" not in refused.text


@pytest.mark.parametrize(
    "authorization",
    [f"Bearer {TOKEN}", f"bearer {TOKEN}", f"Bearer  {TOKEN} "],
)
def test_the_right_token_opens_the_plan(token_client: TestClient, authorization: str) -> None:
    assert (
        token_client.get("/orders/O-1", headers={"authorization": authorization}).status_code == 200
    )


@pytest.mark.parametrize(
    "authorization",
    ["Bearer", "Bearer s3cret", f"Bearer {TOKEN}x", f"Token {TOKEN}", TOKEN, "Basic czNjcmV0"],
)
def test_a_wrong_token_is_refused(token_client: TestClient, authorization: str) -> None:
    assert token_client.get("/", headers={"authorization": authorization}).status_code == 401


@pytest.fixture(scope="module")
def basic_client(reader: FakeReader) -> TestClient:
    return plan_client(reader, WebSettings(basic_username="ops", basic_password="pässword:1"))


def test_with_basic_credentials_the_browser_is_asked_for_them(basic_client: TestClient) -> None:
    refused = basic_client.get("/")

    assert refused.status_code == 401
    assert refused.headers.get_list("www-authenticate") == [
        'Basic realm="order status", charset="UTF-8"'
    ]
    assert basic_client.get("/", headers=basic("ops", "pässword:1")).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        basic("ops", "pässword"),
        basic("op", "pässword:1"),
        basic("ops", "pässword:12"),
        basic("", ""),
        {"authorization": "Basic not-base64!"},
        {"authorization": "Basic " + base64.b64encode(b"ops:\xff").decode()},
        BEARER,
    ],
    ids=["password", "username", "longer", "empty", "not-base64", "not-utf8", "bearer"],
)
def test_wrong_basic_credentials_are_refused(
    basic_client: TestClient, headers: dict[str, str]
) -> None:
    assert basic_client.get("/", headers=headers).status_code == 401


def test_with_both_either_credential_opens_the_plan(reader: FakeReader) -> None:
    client = plan_client(
        reader, WebSettings(bearer_token=TOKEN, basic_username="ops", basic_password="pw")
    )

    assert client.get("/", headers=BEARER).status_code == 200
    assert client.get("/", headers=basic("ops", "pw")).status_code == 200
    refused = client.get("/", headers=basic("ops", TOKEN))
    assert refused.status_code == 401
    assert len(refused.headers.get_list("www-authenticate")) == 2


@pytest.mark.parametrize(
    "fields",
    [
        {"bearer_token": ""},
        {"basic_username": "ops"},
        {"basic_password": "pw"},
        {"basic_username": "", "basic_password": "pw"},
        {"basic_username": "o:ps", "basic_password": "pw"},
        {"basic_username": "ops", "basic_password": ""},
    ],
)
def test_settings_refuse_credentials_that_cannot_work(fields: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        WebSettings.model_validate(fields)


def test_settings_hide_their_secrets() -> None:
    settings = WebSettings(bearer_token=TOKEN, basic_username="ops", basic_password="pw")

    assert settings.protected
    assert not WebSettings().protected
    assert TOKEN not in repr(settings)
    assert "'pw'" not in repr(settings)


@pytest.mark.parametrize(
    ("entity_id", "valid"),
    [
        ("O-1001", True),
        ("SVC_INTERNET.1:eu@2+x", True),
        ("Заказ-1", True),
        ("commande-é", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("", False),
        (".", False),
        ("...", False),
        ("../etc", False),
        ("a/b", False),
        ("a b", False),
        ("a\tb", False),
        ("<script>", False),
        ('"quoted"', False),
        ("it's", False),
        ("a&b", False),
        ("a?b", False),
        ("a#b", False),
        ("a%2F", False),
        ("{tag}", False),
        ("O-1\n", False),
    ],
)
def test_ids_accepted_in_urls(entity_id: str, valid: bool) -> None:
    assert is_valid_id(entity_id) is valid


def test_an_id_is_one_path_segment() -> None:
    assert id_path("Заказ-1") == "%D0%97%D0%B0%D0%BA%D0%B0%D0%B7-1"
    assert id_path("O-1:a@b+c") == "O-1%3Aa%40b%2Bc"
