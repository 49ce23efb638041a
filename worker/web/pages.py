"""HTML from the view models: Jinja2 templates shipped in the package, escaping every value.

The order page is made of fragments, each a template whose root element carries the fragment's
name as its id: the page includes them all, and the live update sends the ones that changed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from jinja2 import Environment, PackageLoader, StrictUndefined

from worker.web.ids import id_path, is_valid_id
from worker.web.views import OrderView
from worker.web.vocabulary import Vocabulary

ORDER_FRAGMENTS: Final = (
    "summary",
    "tree",
    "jeopardy",
    "fallouts",
    "services",
    "timeline",
    "parked",
)


@dataclass(frozen=True, slots=True)
class Links:
    """The URLs a page links to, under the prefix the routes are mounted at, carrying the viewer's
    vocabulary when it is not the default. None for an id the routes would refuse (shown, not
    linked)."""

    root: str
    vocabulary: Vocabulary
    default_vocabulary: Vocabulary

    @property
    def _query(self) -> str:
        return "" if self.vocabulary is self.default_vocabulary else f"?labels={self.vocabulary}"

    def overview(self) -> str:
        return f"{self.root}/{self._query}"

    def search(self) -> str:
        return f"{self.root}/search"

    def static(self, name: str) -> str:
        return f"{self.root}/static/{name}"

    def order(self, order_id: str) -> str | None:
        return self._entity("orders", order_id)

    def service(self, service_id: str) -> str | None:
        return self._entity("services", service_id)

    def overview_json(self) -> str:
        return f"{self.root}/api/overview"

    def order_json(self, order_id: str) -> str | None:
        return self._entity("api/orders", order_id, with_query=False)

    def service_json(self, service_id: str) -> str | None:
        return self._entity("api/services", service_id, with_query=False)

    def live(self, order_id: str, version: int) -> str:
        return f"{self.root}/orders/{id_path(order_id)}/live?labels={self.vocabulary}&v={version}"

    def _entity(self, kind: str, entity_id: str, with_query: bool = True) -> str | None:
        if not is_valid_id(entity_id):
            return None
        return f"{self.root}/{kind}/{id_path(entity_id)}{self._query if with_query else ''}"


def dom_id(prefix: str, *ids: str) -> str:
    """An HTML id for an entity whatever its ids hold (quotes, spaces): stable across renders, so
    the live update can keep a disclosure open or a control focused."""
    return f"{prefix}-{'-'.join(entity_id.encode().hex() for entity_id in ids)}"


def moment(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float) -> str:
    """Whole minutes at most (a live page's fragment changes once a minute, not every second)."""
    minutes = int(seconds) // 60
    if minutes == 0:
        return "under a minute"
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min")]
    return " ".join(f"{amount} {unit}" for amount, unit in parts if amount)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


_ENVIRONMENT: Final = Environment(
    loader=PackageLoader("worker.web", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENVIRONMENT.filters["moment"] = moment
_ENVIRONMENT.filters["iso"] = _iso
_ENVIRONMENT.filters["duration"] = duration
_ENVIRONMENT.globals["dom_id"] = dom_id
_ENVIRONMENT.globals["vocabularies"] = list(Vocabulary)


def render(template: str, links: Links, **context: Any) -> str:
    return _ENVIRONMENT.get_template(template).render(
        links=links, vocabulary=links.vocabulary, **context
    )


def order_fragments(view: OrderView, links: Links) -> dict[str, str]:
    """Each fragment of the order page, by its element id."""
    return {
        name: render(f"order/{name}.html", links, order=view).strip() for name in ORDER_FRAGMENTS
    }
