"""The metric card: how a stored score was computed, and which scores may be ranked together.

Two scores are comparable when their cards match apart from the seed (and
what only differs per seed). A selection mixing cards is grouped by card,
and the keys that differ are named.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ganlab.specs import MetricSpec

__all__ = ["card_key", "card_line", "card_summary", "cards_markdown", "differences", "metric_card"]

# Not part of what a score means: the seed, and what the seed alone changes.
_PER_SEED = ("seed", "per_seed")


def metric_card(spec: MetricSpec, params: Mapping[str, Any], backbone: Mapping[str, Any], *, n_real: int,
                n_fake: int | None, holdout: int, holdout_fraction: float, data_hash: str, seed: int) -> dict[str, Any]:
    """The card of one metric's scores in one run."""
    card: dict[str, Any] = {
        "metric": spec.name,
        "version": spec.version,
        "outputs": list(spec.outputs),
        "lower_is_better": spec.lower_is_better,
        "params": dict(params),
        "features": spec.features.name,
        "backbone": backbone.get("backbone"),
        "weights": backbone.get("weights"),
        "resize": backbone.get("resize"),
        "n_real": int(n_real),
        "n_fake": n_fake,
        "reference": {"real": "training split", "floor": f"holdout split ({holdout} images)",
                      "holdout_fraction": holdout_fraction},
        "data_hash": data_hash,
        "seed": seed,
    }
    if spec.card_notes is not None:
        card["notes"] = dict(spec.card_notes(params, int(n_real), n_fake))
    per_seed = backbone.get("per_seed")
    if per_seed:
        card["per_seed"] = dict(per_seed)
    return card


def card_key(card: Mapping[str, Any] | None) -> str:
    """What must be equal for two scores to be ranked together (the card less the seed)."""
    if not card:
        return ""
    return json.dumps({k: v for k, v in card.items() if k not in _PER_SEED}, sort_keys=True, default=str)


def card_summary(cards: Mapping[str, Mapping[str, Any]] | None, metrics: Sequence[str] | None = None) -> str:
    """One key for a run's cards of ``metrics`` (all of them when None)."""
    if not cards:
        return ""
    names = sorted(cards) if metrics is None else [m for m in metrics if m in cards]
    return json.dumps({m: card_key(cards[m]) for m in names}, sort_keys=True)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def differences(cards_a: Mapping[str, Any] | None, cards_b: Mapping[str, Any] | None) -> list[str]:
    """``key: a vs b`` for each card entry that differs between two runs' cards (seeds left out)."""
    def flat(cards: Mapping[str, Any] | None) -> dict[str, Any]:
        if not cards:
            return {"card": "none recorded"}
        return _flatten({m: {k: v for k, v in c.items() if k not in _PER_SEED} for m, c in cards.items()})

    a, b = flat(cards_a), flat(cards_b)
    out = []
    for key in sorted(set(a) | set(b)):
        if a.get(key, "-") != b.get(key, "-"):
            out.append(f"{key}: {_short(a.get(key, '-'))} vs {_short(b.get(key, '-'))}")
    return out


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 24 else text[:21] + "..."


def card_line(card: Mapping[str, Any]) -> str:
    """One line for a terminal: ``fd v1 on classifier-mlp-256x128 (recipe:...) ...``."""
    params = ",".join(f"{k}={v}" for k, v in (card.get("params") or {}).items())
    data_hash = str(card.get("data_hash") or "")[:12]
    return (f"{card.get('metric')} v{card.get('version')}{f' ({params})' if params else ''} on {card.get('backbone')} "
            f"weights {card.get('weights')}, resize: {card.get('resize')}; n_real {card.get('n_real')} "
            f"n_fake {card.get('n_fake')}, reference {(card.get('reference') or {}).get('real')}, "
            f"data {data_hash}, seed {card.get('seed')}")


def cards_markdown(cards: Mapping[str, Mapping[str, Any]]) -> str:
    """The cards for TensorBoard's Text dashboard: one line each, then the JSON as a code block."""
    lines = [f"- {card_line(c)}" for _, c in sorted(cards.items())]
    body = json.dumps(cards, indent=2, sort_keys=True, default=str)
    # Four-space indentation makes the JSON a code block in the dashboard's markdown.
    return "\n".join(lines) + "\n\n" + "\n".join("    " + line for line in body.splitlines())
