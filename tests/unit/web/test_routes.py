"""The plan's routes through Starlette's TestClient: pages, JSON, search, refusals, escaping."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from tests.unit.web.client import TestClient, plan_client
from tests.web.fake_reader import FakeReader, Feed, OrderEvents, order_in_fallout, order_overdue
from worker.web import WebSettings, plan_routes
from worker.web.pages import duration
from worker.web.vocabulary import Vocabulary

HOSTILE = "<script>alert(1)</script>\"'&../é"


@pytest.fixture(scope="module")
def reader() -> FakeReader:
    reader = FakeReader()
    feed = Feed(reader)
    feed.send(*order_in_fallout(OrderEvents("O-1")))
    hostile = OrderEvents(HOSTILE)
    feed.send(hostile.make("order.created", line_items=[]))  # listed, not linked
    cyrillic = OrderEvents("Заказ-1")
    feed.send(
        cyrillic.make(
            "order.created",
            line_items=[{"line_item_id": HOSTILE, "action": "add", "service_id": HOSTILE}],
        ),
        cyrillic.command("order.submitted", actor=HOSTILE, reason=HOSTILE),
    )
    return reader


@pytest.fixture(scope="module")
def client(reader: FakeReader) -> TestClient:
    return plan_client(reader)


def test_the_overview_lists_orders_and_counts_by_state(client: TestClient) -> None:
    page = client.get("/")

    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "no-store"
    assert '<section class="list" aria-labelledby="list-1" data-list="open_fallout">' in page.text
    assert '<a class="id" href="/orders/O-1">O-1</a>' in page.text
    assert f'href="/orders/{quote("Заказ-1")}"' in page.text
    assert '<tr data-state="in_progress">' in page.text


def test_the_overview_as_json(client: TestClient) -> None:
    body = client.get("/api/overview").json()

    lists = {listed["name"]: [o["order_id"] for o in listed["orders"]] for listed in body["lists"]}
    assert lists["open_fallout"] == ["O-1"]
    assert set(lists["recently_changed"]) == {"O-1", HOSTILE, "Заказ-1"}
    counts = {count["state"]["state"]: count["count"] for count in body["counts"]}
    assert counts == {"draft": 1, "new": 1, "in_progress": 1}
    assert body["total"] == 3


def test_the_order_page_has_every_fragment_and_the_live_updates_address(
    client: TestClient, reader: FakeReader
) -> None:
    page = client.get("/orders/O-1")

    assert page.status_code == 200
    for fragment in ("summary", "tree", "jeopardy", "fallouts", "services", "timeline", "parked"):
        assert f'<section id="{fragment}"' in page.text
    version = reader.versions["O-1"]
    assert f'data-live="/orders/O-1/live?labels=servicenow&amp;v={version}"' in page.text
    assert '<div class="row" data-entity="task" data-id="T-2">' in page.text
    assert '<link rel="stylesheet" href="/static/plan.css">' in page.text


@pytest.mark.parametrize(
    ("labels", "shown"),
    [
        ("", "In progress"),
        ("servicenow", "In progress"),
        ("nextian", "In Progress"),
        ("psa", "In Process"),
        ("tmf", "inProgress"),
        ("klingon", "In progress"),  # not a vocabulary: the default
    ],
)
def test_the_viewer_picks_the_label_vocabulary(client: TestClient, labels: str, shown: str) -> None:
    page = client.get("/orders/O-1", params={"labels": labels})

    summary = page.text.split('<section id="summary"', 1)[1]
    assert f'data-state="in_progress" title="in_progress">{shown}</span>' in summary


def test_links_carry_a_picked_vocabulary_and_a_default_one_set_by_the_deployment(
    reader: FakeReader,
) -> None:
    client = plan_client(reader, default_vocabulary=Vocabulary.TMF)

    assert ">inProgress</span>" in client.get("/orders/O-1").text
    page = client.get("/services/SVC-1", params={"labels": "psa"})
    assert 'href="/orders/O-1?labels=psa"' in page.text
    assert '<option value="psa" selected>PSA</option>' in page.text
    assert 'href="/orders/O-1"' in client.get("/services/SVC-1").text


def test_a_state_no_system_names_shows_its_canonical_name() -> None:
    reader, e = FakeReader(), OrderEvents("O-7")
    created = e.make("order.created", line_items=[])
    Feed(reader).send(created, e.command("order.submitted"), e.command("order.rejected"))
    page = plan_client(reader).get("/orders/O-7", params={"labels": "psa"})

    assert 'title="PSA has no name for rejected">rejected</span>' in page.text


def test_the_order_as_json_is_the_page_data_with_its_version(
    client: TestClient, reader: FakeReader
) -> None:
    body = client.get("/api/orders/O-1").json()

    assert body["version"] == reader.versions["O-1"]
    assert body["state"]["labels"]["tmf"] == "inProgress"
    assert [item["line_item_id"] for item in body["line_items"]] == ["LI-1", "LI-2"]
    assert [(f["fallout_id"], f["open"]) for f in body["fallouts"]] == [
        ("FO-1", True),
        ("FO-0", False),
    ]
    assert body["parked"][0]["waiting_for"] == "work order WO-9"
    assert body["tasks"] == {"final": 1, "total": 3, "percent": 33}


def test_jeopardy_shows_in_its_section_in_the_tree_and_in_the_json() -> None:
    reader = FakeReader()
    Feed(reader).send(*order_overdue(OrderEvents("O-8")))
    client = plan_client(reader)
    page = client.get("/orders/O-8").text
    body = client.get("/api/orders/O-8").json()

    section = page.split('<section id="jeopardy"', 1)[1].split("</section>", 1)[0]
    row = section.split("<tr id=", 1)[1]
    assert "data-entity=" not in section  # only the tree's rows (which the browser tests read)
    assert 'data-kind="task" data-entity-id="T-1" data-reason="overdue"' in row
    assert "Overdue: not finished by its due time" in row
    assert row.count('<time datetime="2026-11-21T10:02:00Z">') == 2  # since, and due
    episode_id = row.split('"', 2)[1]
    task = page.split('data-entity="task" data-id="T-1">', 1)[1].split("</div>", 1)[0]
    assert 'due <time datetime="2026-11-21T10:02:00Z">' in task
    assert f'<a class="flag jeopardy" href="#{episode_id}">In jeopardy: overdue</a>' in task
    assert '<a href="#jeopardy">1 open</a>' in page  # the summary
    (episode,) = body["jeopardy"]
    assert {key: episode[key] for key in ("entity", "entity_id", "reason", "due_at")} == {
        "entity": "task",
        "entity_id": "T-1",
        "reason": "overdue",
        "due_at": "2026-11-21T10:02:00Z",
    }
    assert episode["late_by_s"] > 0
    assert body["line_items"][0]["work_order_views"][0]["task_views"][0]["jeopardy"] == ["overdue"]
    assert body["due_at"] == "2026-12-21T10:00:00Z"


def test_an_order_without_jeopardy_says_so(client: TestClient) -> None:
    page = client.get("/orders/O-1").text

    assert "Nothing in this order is in jeopardy." in page
    assert 'class="flag jeopardy"' not in page
    assert client.get("/api/orders/O-1").json()["jeopardy"] == []


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (59.9, "under a minute"),
        (60, "1 min"),
        (3 * 3600 + 59, "3 h"),
        (2 * 86400 + 5 * 60, "2 d 5 min"),
        (86400 + 3600 + 60, "1 d 1 h 1 min"),
    ],
)
def test_how_late_is_shown_in_whole_minutes(seconds: float, shown: str) -> None:
    assert duration(seconds) == shown


def test_the_service_page_and_its_json(client: TestClient) -> None:
    page = client.get("/services/SVC-1")
    body = client.get("/api/services/SVC-1").json()

    assert page.status_code == 200
    assert 'data-state="new" title="new">New</span>' in page.text
    assert '<li><a class="id" href="/orders/O-1">O-1</a></li>' in page.text
    assert (body["status"]["state"], body["status"]["active"], body["orders"]) == (
        "new",
        True,
        ["O-1"],
    )


@pytest.mark.parametrize(
    ("query", "location"),
    [
        ("q=O-1", "/orders/O-1"),
        ("q=++O-1+", "/orders/O-1"),
        ("q=SVC-2", "/services/SVC-2"),
        ("q=SVC-2&labels=tmf", "/services/SVC-2?labels=tmf"),
        (f"q={quote('Заказ-1')}", f"/orders/{quote('Заказ-1')}"),
        ("q=", "/"),
        ("", "/"),
    ],
)
def test_search_finds_an_order_or_a_service(client: TestClient, query: str, location: str) -> None:
    found = client.get(f"/search?{query}")

    assert (found.status_code, found.headers["location"]) == (303, location)


def test_search_says_when_nothing_has_the_id_or_the_id_is_not_one(client: TestClient) -> None:
    missing = client.get("/search", params={"q": "O-404"})
    refused = client.get("/search", params={"q": HOSTILE})

    assert missing.status_code == 404
    assert "No order or service has this id." in missing.text
    assert refused.status_code == 400
    assert "Not an id the plan accepts" in refused.text


@pytest.mark.parametrize("kind", ["orders", "services"])
def test_an_id_not_in_the_store_is_not_found(client: TestClient, kind: str) -> None:
    page = client.get(f"/{kind}/X-404")
    body = client.get(f"/api/{kind}/X-404")

    assert page.status_code == body.status_code == 404
    assert '<code class="refused-id">X-404</code>' in page.text
    assert body.json() == {"error": f"No {kind[:-1]} has this id.", "id": "X-404"}


@pytest.mark.parametrize(
    "bad_id",
    [
        HOSTILE.replace("/", ""),
        "a b",
        "x" * 129,
        "...",
        "O-1\u0000",
        "{O-1}",
        "O-1%",
    ],
)
def test_an_id_the_plan_does_not_accept_is_refused_and_shown_inertly(
    client: TestClient, bad_id: str
) -> None:
    path_id = quote(bad_id, safe="")
    page = client.get(f"/orders/{path_id}")
    body = client.get(f"/api/orders/{path_id}")

    assert page.status_code == body.status_code == 400
    assert "<script>" not in page.text
    assert "Not an id the plan accepts" in page.text
    assert body.json()["id"] == bad_id  # the JSON carries it exactly, as a string
    assert client.get(f"/services/{path_id}").status_code == 400
    assert client.get(f"/orders/{path_id}/live").status_code == 400


def test_hostile_texts_in_a_record_are_escaped_everywhere(client: TestClient) -> None:
    path = f"/orders/{quote('Заказ-1')}"
    page = client.get(path)
    body = client.get(f"/api/{path.lstrip('/')}").json()

    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&#39;&amp;../é"
    assert f'data-id="{escaped}"' in page.text  # an attribute cannot be broken out of
    assert f"by {escaped}: {escaped}" in page.text  # the submit's actor and reason
    assert f'<span class="id">{escaped}</span>' in page.text  # its service: shown, not linked
    assert body["line_items"][0]["line_item_id"] == HOSTILE
    overview = client.get("/").text
    assert f'<span class="id">{escaped}</span>' in overview  # the hostile order id, unlinked
    raw = client.get("/api/overview").content.decode()
    assert HOSTILE in {
        o["order_id"] for listed in json.loads(raw)["lists"] for o in listed["orders"]
    }


def test_the_static_files_are_served_by_the_worker(client: TestClient) -> None:
    css = client.get("/static/plan.css")
    script = client.get("/static/plan.js")

    assert (css.status_code, css.headers["content-type"]) == (200, "text/css; charset=utf-8")
    assert script.status_code == 200
    assert "EventSource" in script.text
    assert client.get("/static/../routes.py").status_code == 404


def test_the_routes_work_under_a_prefix(reader: FakeReader) -> None:
    app = Starlette(routes=[Mount("/plan", routes=plan_routes(reader, WebSettings()))])
    client = TestClient(app, follow_redirects=False)

    page = client.get("/plan/orders/O-1")
    assert '<link rel="stylesheet" href="/plan/static/plan.css">' in page.text
    assert 'data-live="/plan/orders/O-1/live?' in page.text
    assert client.get("/plan/search", params={"q": "O-1"}).headers["location"] == "/plan/orders/O-1"
    assert client.get("/plan/static/plan.css").status_code == 200


def test_the_live_stream_of_an_order_not_in_the_store_says_it_is_gone(client: TestClient) -> None:
    stream = client.get("/orders/O-404/live")

    assert stream.status_code == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert "event: gone" in stream.text
