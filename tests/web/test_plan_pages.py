"""The plan served by the real worker (`order-status run`, real broker, real Redis) in a real
headless Chromium: the order page against the snapshot in Redis, a published event appearing live,
the overview and search against the store, hostile ids and texts staying inert; screenshots saved
as test artifacts (`test-artifacts/web/`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.integration.harness import eventually, unique
from tests.web.conftest import PlanWorker
from tests.web.fake_reader import OrderEvents, order_in_fallout
from worker.rules.labels import ORDER_LABELS, TASK_LABELS, WORK_ORDER_LABELS, Labels
from worker.rules.snapshot import Order
from worker.rules.states import OrderState, ServiceState

pytestmark = [pytest.mark.browser, pytest.mark.integration]
# The page's live update polls once a second (and renders again every tenth poll whatever the
# version says): a change shows within a few seconds, well before the tenth.
LIVE_S = 6


@pytest.fixture
def page(browser: WebDriver) -> Iterator[WebDriver]:
    yield browser
    browser.get("about:blank")  # closes the page's event stream


def screenshot(browser: WebDriver, artifacts: Path, name: str, width: int = 1280) -> Path:
    """The whole page at this width (the window is made as tall as the page)."""
    browser.set_window_size(width, 900)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(width, height)
    path = artifacts / f"{name}.png"
    assert browser.save_screenshot(str(path)), path
    browser.set_window_size(1280, 900)
    return path


def loaded(browser: WebDriver, url_part: str) -> None:
    """Wait until a navigation started by a click or a key has loaded a page whose URL has this."""
    WebDriverWait(browser, 5).until(
        lambda browser: (
            url_part in browser.current_url
            and browser.execute_script("return document.readyState") == "complete"
        )
    )


Tree = dict[tuple[str, str], tuple[str, str]]


def shown_tree(browser: WebDriver) -> Tree:
    """(entity, id) -> the state and the label the page shows, for every row of the tree."""
    # Read in one script, so that a fragment replaced meanwhile cannot leave a stale element; and
    # matched by value, not in a selector, as an id may hold quotes and brackets.
    rows = browser.execute_script(
        """return [...document.querySelectorAll("[data-entity][data-id]")].map((row) => {
            const badge = row.querySelector(".badge");
            return [row.dataset.entity, row.dataset.id, badge.dataset.state, badge.textContent];
        })"""
    )
    return {(kind, id_): (state, label.strip()) for kind, id_, state, label in rows}


def snapshot_tree(order: Order | None, vocabulary: str) -> Tree:
    """What the page should show for the order's snapshot."""
    assert order is not None
    rows: list[tuple[str, str, str, Mapping[Any, Labels]]] = [
        ("order", order.order_id, order.state, ORDER_LABELS),
        *(("line item", i.line_item_id, i.state, ORDER_LABELS) for i in order.line_items.values()),
        *(
            ("work order", w.work_order_id, w.state, WORK_ORDER_LABELS)
            for w in order.work_orders.values()
        ),
        *(("task", t.task_id, t.state, TASK_LABELS) for t in order.tasks.values()),
    ]
    return {
        (kind, entity_id): (state, getattr(labels[state], vocabulary))
        for kind, entity_id, state, labels in rows
    }


async def test_the_order_page_shows_the_snapshots_tree_labels_progress_and_fallout(
    page: WebDriver, plan_worker: PlanWorker, artifacts: Path
) -> None:
    # Ids as people read them (the README shows this page): the worker is this module's own, and
    # no other test uses them.
    order_id = "O-2001"
    await plan_worker.send(*order_in_fallout(OrderEvents(order_id), service_prefix="SVC-FIBER"))
    order = (await plan_worker.snapshot(order_id)).order
    assert order is not None
    page.get(f"{plan_worker.url}/orders/{order_id}")

    assert page.find_element(By.CSS_SELECTOR, "h1").text == f"Order {order_id}"
    assert shown_tree(page) == snapshot_tree(order, "servicenow")
    summary = page.find_element(By.ID, "summary")
    assert [
        (bar.get_attribute("value"), bar.get_attribute("max"))
        for bar in summary.find_elements(By.TAG_NAME, "progress")
    ] == [("0", "2"), ("1", "3")]  # work orders, then tasks: T-1 of T-1..T-3 is final
    assert "1 of 3 (33%)" in summary.text

    fallouts = {
        card.get_attribute("data-fallout"): card
        for card in page.find_elements(By.CSS_SELECTOR, "#fallouts article")
    }
    shown = set()
    for task in order.tasks.values():
        for fallout in task.fallouts.values():
            card = fallouts[fallout.fallout_id]
            field = {
                name: card.find_element(By.CSS_SELECTOR, f'[data-field="{name}"]').text
                for name in ("category", "reason", "assigned_group")
            }
            assert field == {
                "category": fallout.category,
                "reason": fallout.reason,
                "assigned_group": fallout.assigned_group,
            }
            assert ("Open" in card.text) is fallout.open
            shown.add(fallout.fallout_id)
    assert shown == fallouts.keys() == {"FO-0", "FO-1"}
    assert "Fallout reassigned to network-operations" in fallouts["FO-1"].text
    assert "work order WO-9" in page.find_element(By.ID, "parked").text
    jeopardy = page.find_element(By.ID, "jeopardy").text  # its events are a minute apart
    assert jeopardy == "In jeopardy\nNothing in this order is in jeopardy."
    assert "Refused order.approved" in page.find_element(By.ID, "timeline").text
    screenshot(page, artifacts, "order-servicenow")
    # The README's picture (docs/plan-order.png): what a laptop shows first.
    page.set_window_size(1100, 1000)
    assert page.save_screenshot(str(artifacts / "order-page.png"))
    page.set_window_size(390, 844)  # a phone: nothing wider than the screen but scrolling tables
    assert page.execute_script(
        "return document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    screenshot(page, artifacts, "order-phone", width=390)

    # The viewer picks TMF's names, with the keyboard-reachable form (no script needed).
    Select(page.find_element(By.ID, "labels")).select_by_value("tmf")
    page.find_element(By.CSS_SELECTOR, "form.labels button").click()
    loaded(page, "labels=tmf")
    assert shown_tree(page) == snapshot_tree(order, "tmf")
    screenshot(page, artifacts, "order-tmf")


async def test_a_published_event_appears_live_without_a_reload(
    page: WebDriver, plan_worker: PlanWorker, artifacts: Path
) -> None:
    events, service_prefix = OrderEvents(unique("O")), unique("SVC")
    await plan_worker.send(*order_in_fallout(events, service_prefix=service_prefix))
    page.get(f"{plan_worker.url}/orders/{events.order_id}")
    WebDriverWait(page, 5).until(
        lambda browser: browser.find_element(By.ID, "live-status").text.startswith("Live:")
    )
    page.execute_script("window.stillTheSamePage = true")
    assert shown_tree(page)["task", "T-2"] == ("on_hold", "On hold")

    # Network operations resolve the fallout: the task is resolved, its work order resumes.
    await plan_worker.send(events.make("task.fallout.resolved", task_id="T-2", fallout_id="FO-1"))
    expected = snapshot_tree((await plan_worker.snapshot(events.order_id)).order, "servicenow")
    assert expected["task", "T-2"] == ("resolved", "Resolved")
    WebDriverWait(page, LIVE_S).until(lambda browser: shown_tree(browser) == expected)
    assert "Resolved" in page.find_element(By.CSS_SELECTOR, '[data-fallout="FO-1"] h3').text

    # The field agent closes the task: LI-1 completes, and its service goes into service.
    await plan_worker.send(events.task_updated("T-2", "closed_complete"))
    expected = snapshot_tree((await plan_worker.snapshot(events.order_id)).order, "servicenow")
    assert expected["line item", "LI-1"] == ("completed", "Completed")
    WebDriverWait(page, LIVE_S).until(lambda browser: shown_tree(browser) == expected)
    assert page.execute_script("return window.stillTheSamePage") is True
    screenshot(page, artifacts, "order-after-live-update")
    service_id = f"{service_prefix}-1"
    in_service: ServiceState | None = ServiceState.IN_SERVICE
    await eventually(lambda: plan_worker.service_state(service_id), in_service)
    page.refresh()
    service = page.find_element(By.CSS_SELECTOR, f'#services [data-service="{service_id}"]')
    assert "In Service" in service.text


async def test_the_overview_lists_and_counts_what_the_store_holds_and_search_finds_a_service(
    page: WebDriver, plan_worker: PlanWorker, artifacts: Path
) -> None:
    first, held = OrderEvents(unique("O")), OrderEvents(unique("O"))
    service_prefix = unique("SVC")
    await plan_worker.send(*order_in_fallout(first, service_prefix=service_prefix))
    await plan_worker.send(*order_in_fallout(held, service_prefix=unique("SVC")))
    await plan_worker.send(held.command("order.hold.requested", reason="customer away"))
    service_id = f"{service_prefix}-1"
    new: ServiceState | None = ServiceState.NEW  # the services stage has the service
    await eventually(lambda: plan_worker.service_state(service_id), new)
    page.get(f"{plan_worker.url}/")

    def listed(name: str) -> list[str]:
        rows = page.find_elements(By.CSS_SELECTOR, f'[data-list="{name}"] tr[data-order]')
        ours = {first.order_id, held.order_id}
        return [order for row in rows if (order := str(row.get_attribute("data-order"))) in ours]

    assert listed("open_fallout") == [held.order_id, first.order_id]  # newest first
    assert listed("on_hold") == [held.order_id]
    assert listed("in_cancellation") == []
    assert listed("recently_changed") == [held.order_id, first.order_id]
    stored = await plan_worker.store.overview(20)
    counts = page.find_element(By.ID, "counts").text
    for state, count in stored.counts.items():
        assert f"{ORDER_LABELS[state].servicenow} {count}" in counts
    assert stored.counts[OrderState.ON_HOLD] >= 1
    screenshot(page, artifacts, "overview")

    # With the keyboard: the search field, then the service's order link.
    page.find_element(By.ID, "q").send_keys(service_id, Keys.ENTER)
    loaded(page, f"/services/{service_id}")
    assert page.find_element(By.CSS_SELECTOR, "h1").text == f"Service {service_id}"
    assert page.find_element(By.CSS_SELECTOR, '[data-field="active"]').text == "Yes"
    screenshot(page, artifacts, "service")
    page.find_element(By.LINK_TEXT, first.order_id).send_keys(Keys.ENTER)
    loaded(page, f"/orders/{first.order_id}")
    assert page.find_element(By.CSS_SELECTOR, "h1").text == f"Order {first.order_id}"


HOSTILE = '<script>window.pwned=1</script>"\'><img src=x onerror="window.pwned=1">../é'


async def test_hostile_ids_and_texts_render_inertly(
    page: WebDriver, plan_worker: PlanWorker, artifacts: Path
) -> None:
    hostile_id = f"{HOSTILE}{unique('')}"  # an order id no route accepts
    events = OrderEvents(hostile_id)
    created = events.make(
        "order.created",
        line_items=[
            {
                "line_item_id": HOSTILE,
                "action": "add",
                "service_id": HOSTILE,
                "work_orders": [
                    {
                        "work_order_id": "WO-1",
                        "kind": "service",
                        "tasks": [{"task_id": HOSTILE, "state": "open"}],
                    }
                ],
            }
        ],
    )
    fallout = events.make(
        "task.fallout.raised",
        task_id=HOSTILE,
        fallout_id=HOSTILE,
        category=HOSTILE,
        reason=HOSTILE,
        assigned_group=HOSTILE,
    )
    await plan_worker.send(
        created, events.command("order.submitted", actor=HOSTILE, reason=HOSTILE), fallout
    )
    # An order with a valid id whose contents are hostile: every text shown as text.
    valid = OrderEvents(unique("Заказ"))
    await plan_worker.send(
        valid.make(
            "order.created",
            line_items=[{"line_item_id": HOSTILE, "action": "add", "work_orders": []}],
        ),
        valid.command("order.submitted", actor=HOSTILE, reason=HOSTILE),
    )

    page.get(f"{plan_worker.url}/")  # lists the hostile order id, as text: no route takes it
    listed = page.find_element(By.CSS_SELECTOR, '[data-list="recently_changed"]')
    assert hostile_id in listed.text
    page.get(f"{plan_worker.url}/orders/{quote(valid.order_id)}")
    assert page.find_element(By.CSS_SELECTOR, "h1").text == f"Order {valid.order_id}"
    assert shown_tree(page)["line item", HOSTILE][0] == "new"
    assert HOSTILE in page.find_element(By.ID, "timeline").text  # the actor and the reason
    screenshot(page, artifacts, "order-hostile-texts")
    refused_id = hostile_id.replace("/", "")
    page.get(f"{plan_worker.url}/orders/{quote(refused_id, safe='')}")
    assert page.find_element(By.CSS_SELECTOR, "h1").text == "Not accepted"
    assert page.find_element(By.CLASS_NAME, "refused-id").text == refused_id
    page.get(f"{plan_worker.url}/search?q={quote(hostile_id, safe='')}")
    assert "Not an id the plan accepts" in page.find_element(By.TAG_NAME, "main").text
    screenshot(page, artifacts, "refused-hostile-id")
    assert page.execute_script("return window.pwned") is None
