"""The functional core stays pure: nothing in worker/rules imports I/O, a clock or asyncio."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parents[3] / "worker" / "rules"
# Plain data and computation only: `hashlib` and `uuid` make uuid5 output ids (a hash), never
# uuid1/uuid4; `functools` memoises pure functions; `operator` has functions for the operators.
ALLOWED = {
    "__future__",
    "collections",
    "collections.abc",
    "dataclasses",
    "datetime",
    "enum",
    "functools",
    "hashlib",
    "operator",
    "typing",
    "uuid",
    "pydantic",
}
ALLOWED_PREFIXES = ("schemas", "worker.rules")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", sorted(RULES.glob("*.py")), ids=lambda path: path.name)
def test_the_rules_import_nothing_that_does_io(path: Path) -> None:
    forbidden = {
        name
        for name in _imports(path)
        if name not in ALLOWED and not name.startswith(ALLOWED_PREFIXES)
    }
    assert forbidden == set()


def test_the_rules_never_read_the_clock_or_make_random_ids() -> None:
    source = "\n".join(path.read_text() for path in RULES.glob("*.py"))
    for call in ("datetime.now(", "datetime.utcnow(", "time.time(", "uuid1(", "uuid4(", "random."):
        assert call not in source, call
