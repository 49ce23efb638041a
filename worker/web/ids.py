"""Which ids the pages accept in a URL or a search. Anything else is answered 400 before a read.

Letters and digits of any script, `_ . : @ + -`, up to 128 characters: what order, service and
ticket ids are made of, and nothing that means something in a path, a query, HTML or a Redis hash
tag (`/ ? # % < > " ' & { }`, spaces, control characters)."""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import quote

MAX_ID_LENGTH: Final = 128
_ID: Final = re.compile(rf"[\w.:@+-]{{1,{MAX_ID_LENGTH}}}")


def is_valid_id(value: str) -> bool:
    # Only dots would be read as `.` or `..` of a path by browsers and proxies.
    return _ID.fullmatch(value) is not None and value.strip(".") != ""


def id_path(value: str) -> str:
    """The id as one URL path segment (non-ASCII letters percent-encoded)."""
    return quote(value, safe="")
