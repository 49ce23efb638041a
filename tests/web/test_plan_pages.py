"""The plan in a real headless Chromium: the order page against the record it shows, a change
appearing live, hostile ids and texts staying inert; screenshots saved as test artifacts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.web.conftest import ServedPlan
from tests.web.fake_reader import OrderEvents, order_in_fallout
from worker.rules.labels import ORDER_LABELS, TASK_LABELS, WORK_ORDER_LABELS
from worker.rules.snapshot import Order

pytestmark = pytest.mark.browser


@pytest.fixture
def page(browser: WebDriver, served: ServedPlan) -> Iterator[WebDriver]:
    yield browser
    browser.get("about:blank")  # closes the page's event stream before its server stops


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


def badge(browser: WebDriver, entity: str, entity_id: str) -> tuple[str, str]:
    """The state and the label the page shows for one entity of the tree."""
    # Read in one script, so that a fragment replaced meanwhile cannot leave a stale element; and
    # matched by value, not in a selector, as an id may hold quotes and brackets.
    rows = browser.execute_script(
        """return [...document.querySelectorAll("[data-entity][data-id]")].map((row) => {
            const badge = row.querySelector(".badge");
            return [row.dataset.entity, row.dataset.id, badge.dataset.state, badge.textContent];
        })"""
    )
    (shown,) = [
        (state, label.strip())
        for kind, id_, state, label in rows
        if (kind, id_) == (entity, entity_id)
    ]
    return shown


def assert_tree_matches(browser: WebDriver, order: Order | None, vocabulary: str) -> None:
    assert order is not None
    for item in order.line_items.values():
        label = getattr(ORDER_LABELS[item.state], vocabulary)
        assert badge(browser, "line item", item.line_item_id) == (item.state, label)
    for work_order in order.work_orders.values():
        label = getattr(WORK_ORDER_LABELS[work_order.state], vocabulary)
        assert badge(browser, "work order", work_order.work_order_id) == (work_order.state, label)
    for task in order.tasks.values():
        label = getattr(TASK_LABELS[task.state], vocabulary)
        assert badge(browser, "task", task.task_id) == (task.state, label)


def test_the_order_page_shows_the_records_tree_labels_progress_and_fallout(
    page: WebDriver, served: ServedPlan, artifacts: Path
) -> None:
    served.feed.send(*order_in_fallout(OrderEvents("O-1")))
    order = served.reader.records["O-1"].order
    assert order is not None
    page.get(f"{served.url}/orders/O-1")

    assert page.find_element(By.CSS_SELECTOR, "h1").text == "Order O-1"
    assert_tree_matches(page, order, "servicenow")
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
    assert "Fallout reassigned to network-operations" in fallouts["FO-1"].text
    assert "work order WO-9" in page.find_element(By.ID, "parked").text
    assert "Refused order.approved" in page.find_element(By.ID, "timeline").text
    screenshot(page, artifacts, "order-servicenow")
    page.set_window_size(390, 844)  # a phone: nothing wider than the screen but scrolling tables
    assert page.execute_script(
        "return document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    screenshot(page, artifacts, "order-phone", width=390)

    # The viewer picks TMF's names, with the keyboard-reachable form (no script needed).
    Select(page.find_element(By.ID, "labels")).select_by_value("tmf")
    page.find_element(By.CSS_SELECTOR, "form.labels button").click()
    loaded(page, "labels=tmf")
    assert_tree_matches(page, order, "tmf")
    screenshot(page, artifacts, "order-tmf")


def test_a_state_change_appears_live_without_a_reload(
    page: WebDriver, served: ServedPlan, artifacts: Path
) -> None:
    events = OrderEvents("O-2")
    served.feed.send(*order_in_fallout(events))
    page.get(f"{served.url}/orders/O-2")
    WebDriverWait(page, 5).until(
        lambda browser: browser.find_element(By.ID, "live-status").text.startswith("Live:")
    )
    page.execute_script("window.stillTheSamePage = true")
    assert badge(page, "task", "T-2") == ("on_hold", "On hold")

    # Network operations resolve the fallout: the task is resolved, its work order resumes.
    served.feed.send(events.make("task.fallout.resolved", task_id="T-2", fallout_id="FO-1"))
    WebDriverWait(page, 5).until(lambda browser: badge(browser, "task", "T-2")[0] != "on_hold")
    assert_tree_matches(page, served.reader.records["O-2"].order, "servicenow")
    assert badge(page, "task", "T-2") == ("resolved", "Resolved")
    assert "Resolved" in page.find_element(By.CSS_SELECTOR, '[data-fallout="FO-1"] h3').text

    # The field agent closes the task: LI-1 completes and its service goes into service.
    served.feed.send(events.task_updated("T-2", "closed_complete"))
    WebDriverWait(page, 5).until(lambda browser: badge(browser, "task", "T-2")[0] != "resolved")
    assert_tree_matches(page, served.reader.records["O-2"].order, "servicenow")
    assert badge(page, "line item", "LI-1") == ("completed", "Completed")
    service = page.find_element(By.CSS_SELECTOR, '#services [data-service="SVC-1"]').text
    assert "In Service" in service
    assert page.execute_script("return window.stillTheSamePage") is True
    screenshot(page, artifacts, "order-after-live-update")


def test_the_overview_lists_orders_and_search_finds_a_service_and_its_orders(
    page: WebDriver, served: ServedPlan, artifacts: Path
) -> None:
    served.feed.send(*order_in_fallout(OrderEvents("O-1")))
    held = OrderEvents("O-2")
    served.feed.send(*order_in_fallout(held, service_prefix="SVC-B"))
    served.feed.send(held.command("order.hold.requested", reason="customer away"))
    page.get(f"{served.url}/")

    def listed(name: str) -> list[str]:
        rows = page.find_elements(By.CSS_SELECTOR, f'[data-list="{name}"] tr[data-order]')
        return [str(row.get_attribute("data-order")) for row in rows]

    assert listed("open_fallout") == ["O-2", "O-1"]  # newest first
    assert listed("on_hold") == ["O-2"]
    assert listed("in_cancellation") == []
    assert listed("recently_changed") == ["O-2", "O-1"]
    counts = page.find_element(By.ID, "counts").text
    assert "In progress 1" in counts
    assert "On hold 1" in counts
    screenshot(page, artifacts, "overview")

    # With the keyboard: the search field, then the service's order link.
    page.find_element(By.ID, "q").send_keys("SVC-1", Keys.ENTER)
    loaded(page, "/services/SVC-1")
    assert page.find_element(By.CSS_SELECTOR, "h1").text == "Service SVC-1"
    assert page.find_element(By.CSS_SELECTOR, '[data-field="active"]').text == "Yes"
    screenshot(page, artifacts, "service")
    page.find_element(By.LINK_TEXT, "O-1").send_keys(Keys.ENTER)
    loaded(page, "/orders/O-1")
    assert page.find_element(By.CSS_SELECTOR, "h1").text == "Order O-1"


HOSTILE = '<script>window.pwned=1</script>"\'><img src=x onerror="window.pwned=1">../é'


def test_hostile_ids_and_texts_render_inertly(
    page: WebDriver, served: ServedPlan, artifacts: Path
) -> None:
    events = OrderEvents(HOSTILE)
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
    served.feed.send(created, events.command("order.submitted", actor=HOSTILE, reason=HOSTILE))
    served.feed.send(fallout)
    # An order with a valid id whose contents are hostile: every text shown as text.
    valid = OrderEvents("Заказ-1")
    served.feed.send(
        valid.make(
            "order.created",
            line_items=[{"line_item_id": HOSTILE, "action": "add", "work_orders": []}],
        ),
        valid.command("order.submitted", actor=HOSTILE, reason=HOSTILE),
    )

    page.get(f"{served.url}/")  # lists the hostile order id, as text: no route takes it
    listed = page.find_element(By.CSS_SELECTOR, '[data-list="recently_changed"]')
    assert HOSTILE in listed.text
    page.get(f"{served.url}/orders/{quote('Заказ-1')}")
    assert page.find_element(By.CSS_SELECTOR, "h1").text == "Order Заказ-1"
    assert badge(page, "line item", HOSTILE)[0] == "new"
    assert HOSTILE in page.find_element(By.ID, "timeline").text  # the actor and the reason
    screenshot(page, artifacts, "order-hostile-texts")
    page.get(f"{served.url}/orders/{quote(HOSTILE.replace('/', ''), safe='')}")
    assert page.find_element(By.CSS_SELECTOR, "h1").text == "Not accepted"
    assert page.find_element(By.CLASS_NAME, "refused-id").text == HOSTILE.replace("/", "")
    page.get(f"{served.url}/search?q={quote(HOSTILE, safe='')}")
    assert "Not an id the plan accepts" in page.find_element(By.TAG_NAME, "main").text
    screenshot(page, artifacts, "refused-hostile-id")
    assert page.execute_script("return window.pwned") is None
