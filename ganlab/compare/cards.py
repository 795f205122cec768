"""Grouping runs by metric card: only scores computed the same way (apart from the seed) are ranked together."""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass

from ganlab.compare.table import RunRow, is_reference
from ganlab.metrics.card import card_summary, differences

__all__ = ["CardGroup", "card_groups", "cards_for"]


@dataclass
class CardGroup:
    """Runs whose cards match apart from the seed; ``differs`` names how this group's cards differ from the first's."""

    label: str
    rows: list[RunRow]
    differs: list[str]


def cards_for(metric: str | None, rows: Sequence[RunRow]) -> list[str] | None:
    """The card names that decide whether ``metric`` values may be ranked together (None: every card)."""
    if metric is None:
        return None
    base = metric.removeprefix("best_").removesuffix("_floor").removesuffix("_std")
    names = {name for r in rows for name, card in r.cards.items()
             if isinstance(card, dict) and base in (card.get("outputs") or [name])}
    return sorted(names) if names else None


def card_groups(rows: Sequence[RunRow], metric: str | None = None) -> list[CardGroup]:
    """``rows`` grouped by their cards (of ``metric`` when given), largest group first, order kept within.

    A single group means every run is comparable; otherwise each later group
    names what differs from the first (``fd.n_fake: 1000 vs 500``), and a run
    stored without cards forms a group of its own.
    """
    which = cards_for(metric, rows)
    keyed: dict[str, list[RunRow]] = {}
    unscored: list[RunRow] = []
    for row in rows:
        if not row.cards and not any(not is_reference(m) for m in row.metrics):
            unscored.append(row)  # nothing to rank yet (queued, running, failed early): shown with the first group
            continue
        keyed.setdefault(card_summary(row.cards, which), []).append(row)
    ordered = sorted(keyed.values(), key=lambda members: -len(members)) or [[]]
    ordered[0] = [r for r in rows if r in ordered[0] or r in unscored]
    first = ordered[0][0] if ordered else None
    labels = string.ascii_uppercase
    groups = []
    for i, members in enumerate(ordered):
        label = labels[i] if i < len(labels) else str(i + 1)
        differs = [] if i == 0 or first is None else differences(_pick(first.cards, which), _pick(members[0].cards, which))
        groups.append(CardGroup(label, members, differs))
    return groups


def _pick(cards: dict, names: list[str] | None) -> dict:
    return dict(cards) if names is None else {n: cards[n] for n in names if n in cards}
