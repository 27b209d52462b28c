"""An explicit status pipeline: a table of allowed moves and the one check that enforces it."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from oms.errors import IllegalTransition


class Lifecycle:
    """The allowed moves between statuses of one kind of record (order, invoice)."""

    def __init__(self, noun: str, labels: Mapping[str, str], moves: Mapping[str, set[str]]):
        unknown = {s for targets in moves.values() for s in targets} - set(labels)
        if unknown or set(moves) - set(labels):
            raise ValueError(f"{noun} life cycle names unknown statuses: {unknown}")
        self.noun = noun
        self.labels = dict(labels)
        self.moves = {status: frozenset(moves.get(status, ())) for status in labels}

    def available_transitions(self, status: str) -> frozenset[str]:
        return self.moves[status]

    def is_final(self, status: str) -> bool:
        return not self.moves[status]

    def describe_allowed(self, moves: Collection[str]) -> str:
        """The allowed next statuses as staff read them, e.g. 'Cancelled, Confirmed'."""
        return ", ".join(self.labels[s] for s in sorted(moves)) or "none (final status)"

    def check(self, *, record: str, current: str, target: str, allowed: Collection[str] | None = None) -> None:
        """Raise IllegalTransition, with a message staff can act on, unless current → target is allowed.

        `allowed` narrows the table for one record (never widens it): the table lets an order on hold
        go back to any status an order can be held from, but this order only to its own.
        """
        if target not in self.labels:
            raise IllegalTransition(f"{target!r} is not a {self.noun} status.")
        moves = self.moves[current] if allowed is None else self.moves[current] & frozenset(allowed)
        if target in moves:
            return
        raise IllegalTransition(
            f"{record} is {self.labels[current]}; it cannot become {self.labels[target]}. "
            f"Allowed next: {self.describe_allowed(moves)}."
        )
