"""Why an event is not applied: refused (answered with `command.rejected`), or waiting for a parent
that has not arrived yet (parked)."""

from __future__ import annotations


class Refused(Exception):
    """An event that must not be applied; the message is the reason given to the sender."""


class Missing(Refused):
    """An event naming a parent not known yet. Topics interleave arbitrarily (a task.created may
    overtake its workorder.created), so such an event is parked and retried as the order grows."""

    def __init__(self, parent: str) -> None:
        super().__init__(f"unknown {parent}")
        self.parent = parent
