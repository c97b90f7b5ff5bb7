"""Does the bot suggest products when, and only when, it should? Measured end to end: each
message goes, in a new conversation, through the real Rasa server and action server, and
counts as "got suggestions" when the reply carries product cards.

* Non-shopping messages: CLINC150 (Larson et al., 2019) validation utterances of its 150
  intents in 10 other domains, plus its out-of-scope validation utterances. None of CLINC is
  used for training; the bot's own out-of-scope examples were written without reading it.
* Shopping requests: ``tailor/evaluation/data/shopping_requests.tsv``, 320 messages written
  independently of the NLU training data (sentences, short messy phrases, typos,
  constraints). The same file carries the expected constraints, scored by
  :func:`score_understanding` against :mod:`tailor.nlu.understand`.
"""

from __future__ import annotations

import csv
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "SHOPPING_REQUESTS",
    "ScopeReport",
    "ShoppingRequest",
    "UnderstandingReport",
    "gets_suggestions",
    "handled_as_request",
    "load_clinc",
    "load_clinc_domains",
    "load_shopping_requests",
    "run_scope_eval",
    "score_understanding",
]

SHOPPING_REQUESTS = Path(__file__).parent / "data" / "shopping_requests.tsv"

#: CLINC150's ``order`` intent asks to buy things ("help me buy a black iphone7"); it is
#: counted as non-shopping like the rest of CLINC, and also reported on its own.
CLINC_SHOPPING_LIKE = frozenset({"order"})


@dataclass(frozen=True)
class ShoppingRequest:
    """One in-domain message with the constraints a reader would take from it."""

    text: str
    style: str
    product_type: str = ""
    brand: str = ""
    exclude_brand: str = ""
    colour: str = ""
    exclude_colour: str = ""
    material: str = ""
    price_min: float | None = None
    price_max: float | None = None


def load_shopping_requests(path: str | Path = SHOPPING_REQUESTS) -> list[ShoppingRequest]:
    """Read the tab-separated shopping set ('#' lines are comments; one header line)."""
    rows: list[ShoppingRequest] = []
    with Path(path).open(encoding="utf-8", newline="") as fh:
        lines = [line for line in fh if not line.startswith("#") and line.strip()]
    reader = csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    for n, rec in enumerate(reader, start=2):
        if not rec.get("text") or not rec.get("style"):
            raise ValueError(f"{path}: row {n} has no text or style")

        def num(key: str, rec: dict[str, str] = rec) -> float | None:
            value = (rec.get(key) or "").strip()
            return float(value) if value else None

        rows.append(
            ShoppingRequest(
                text=rec["text"].strip(),
                style=rec["style"].strip(),
                product_type=(rec.get("product_type") or "").strip(),
                brand=(rec.get("brand") or "").strip(),
                exclude_brand=(rec.get("exclude_brand") or "").strip(),
                colour=(rec.get("colour") or "").strip(),
                exclude_colour=(rec.get("exclude_colour") or "").strip(),
                material=(rec.get("material") or "").strip(),
                price_min=num("price_min"),
                price_max=num("price_max"),
            )
        )
    return rows


def load_clinc(path: str | Path) -> dict[str, list[tuple[str, str]]]:
    """CLINC150's ``data_full.json``-style file: split name → ``[(text, intent), …]``."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "val" not in data:
        raise ValueError(f"{path} is not a CLINC150 file (no 'val' split)")
    return {split: [(str(t), str(i)) for t, i in rows] for split, rows in data.items()}


def load_clinc_domains(path: str | Path) -> dict[str, str]:
    """intent → domain from CLINC150's ``domains.json`` (domain → [intents])."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return {intent: domain for domain, intents in data.items() for intent in intents}


def gets_suggestions(reply: Iterable[dict[str, Any]]) -> bool:
    """True when a REST reply carries product cards."""
    for message in reply:
        custom = message.get("custom") or {}
        if isinstance(custom, dict) and custom.get("products"):
            return True
    return False


#: How the bot starts its answer to a product request that matched nothing.
NO_MATCH_PREFIX = "I couldn't find anything for"


def handled_as_request(reply: Iterable[dict[str, Any]]) -> bool:
    """True when the bot answered as to a product request: cards, or its explicit
    "I couldn't find anything for …" answer (which offers to relax the search)."""
    messages = list(reply)
    return gets_suggestions(messages) or any(
        str(m.get("text") or "").startswith(NO_MATCH_PREFIX) for m in messages
    )


@dataclass
class ScopeReport:
    """Shares of messages that got suggestions, by group, with the misses listed."""

    non_shopping: dict[str, tuple[int, int]] = field(default_factory=dict)  # group → (hit, n)
    shopping: dict[str, tuple[int, int]] = field(default_factory=dict)  # style → (hit, n)
    shopping_cards: dict[str, tuple[int, int]] = field(default_factory=dict)  # with cards
    wrong: list[tuple[str, str]] = field(default_factory=list)  # (group, text)
    missed: list[tuple[str, str]] = field(default_factory=list)  # (style, text)
    seconds: float = 0.0
    messages: int = 0

    def rate(self, table: dict[str, tuple[int, int]], keys: Iterable[str] | None = None) -> float:
        """Pooled share over ``keys`` (default all groups)."""
        pick = list(table) if keys is None else list(keys)
        hit = sum(table[k][0] for k in pick)
        n = sum(table[k][1] for k in pick)
        return hit / n if n else 0.0

    @property
    def wrong_suggestion_rate(self) -> float:
        """Share of all non-shopping messages that got product suggestions."""
        return self.rate(self.non_shopping)

    @property
    def recognised_rate(self) -> float:
        """Share of shopping requests answered as requests (cards or a no-match answer)."""
        return self.rate(self.shopping)

    @property
    def suggested_rate(self) -> float:
        """Share of shopping requests that got product cards."""
        return self.rate(self.shopping_cards)

    def markdown(self) -> str:
        """The tables of the report."""
        lines = [
            "| non-shopping messages (CLINC150 val) | n | got suggestions |",
            "| --- | ---: | ---: |",
        ]
        for group, (hit, n) in sorted(self.non_shopping.items()):
            lines.append(f"| {group} | {n} | {hit / n:.1%} ({hit}) |")
        total = sum(n for _, n in self.non_shopping.values())
        lines.append(
            f"| **all** | **{total}** | **{self.wrong_suggestion_rate:.1%}** (target ≤ 5 %) |"
        )
        lines += [
            "",
            "| shopping requests (own set) | n | recognised | of which got cards |",
            "| --- | ---: | ---: | ---: |",
        ]
        for style, (hit, n) in sorted(self.shopping.items()):
            cards = self.shopping_cards.get(style, (0, n))[0]
            lines.append(f"| {style} | {n} | {hit / n:.1%} | {cards / n:.1%} |")
        total = sum(n for _, n in self.shopping.values())
        lines.append(
            f"| **all** | **{total}** | **{self.recognised_rate:.1%}** (target ≥ 95 %) "
            f"| {self.suggested_rate:.1%} |"
        )
        return "\n".join(lines)


def run_scope_eval(
    say: Callable[[str, str], list[dict[str, Any]]],
    non_shopping: Sequence[tuple[str, str]],
    shopping: Sequence[ShoppingRequest],
    workers: int = 4,
    progress: Callable[[int, int], None] | None = None,
) -> ScopeReport:
    """Send every message in its own conversation through ``say(sender, text)`` and count
    who got suggestions. ``non_shopping`` holds ``(group, text)`` pairs."""
    jobs: list[tuple[str, str, str]] = [("non", g, t) for g, t in non_shopping]
    jobs += [("shop", r.style, r.text) for r in shopping]
    started = time.monotonic()
    done = 0

    def one(i_job: tuple[int, tuple[str, str, str]]) -> tuple[bool, bool]:
        i, (_, _, text) = i_job
        reply = say(f"eval-scope-{i}-{time.time_ns() % 10**9}", text)
        return gets_suggestions(reply), handled_as_request(reply)

    results: list[tuple[bool, bool]] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for got in pool.map(one, enumerate(jobs)):
            results.append(got)
            done += 1
            if progress is not None:
                progress(done, len(jobs))
    report = ScopeReport(seconds=time.monotonic() - started, messages=len(jobs))
    non: dict[str, list[bool]] = defaultdict(list)
    shop: dict[str, list[bool]] = defaultdict(list)
    shop_cards: dict[str, list[bool]] = defaultdict(list)
    for (kind, group, text), (cards, handled) in zip(jobs, results, strict=True):
        if kind == "non":
            non[group].append(cards)
            if cards:
                report.wrong.append((group, text))
        else:
            shop[group].append(handled)
            shop_cards[group].append(cards)
            if not handled:
                report.missed.append((group, text))
    report.non_shopping = {g: (sum(v), len(v)) for g, v in non.items()}
    report.shopping = {g: (sum(v), len(v)) for g, v in shop.items()}
    report.shopping_cards = {g: (sum(v), len(v)) for g, v in shop_cards.items()}
    return report


@dataclass
class UnderstandingReport:
    """Per-field accuracy of extracted constraints on the shopping set."""

    fields: dict[str, tuple[int, int, int]]  # field → (correct, stated, false positives)
    corrections: Counter[str] = field(default_factory=Counter)

    def markdown(self) -> str:
        """One row per field: recall on rows that state it, and spurious extractions."""
        lines = [
            "| constraint | rows stating it | extracted correctly | extracted when not stated |",
            "| --- | ---: | ---: | ---: |",
        ]
        for name, (ok, n, fp) in self.fields.items():
            rate = f"{ok / n:.1%}" if n else "–"
            lines.append(f"| {name} | {n} | {rate} ({ok}) | {fp} |")
        return "\n".join(lines)


def score_understanding(
    understand: Callable[[str], Any],
    rows: Sequence[ShoppingRequest],
    category_for: Callable[[str], str | None],
) -> UnderstandingReport:
    """Compare :meth:`QueryUnderstanding.understand` with the labelled constraints.

    A product type is right when it resolves to the same category as the labelled leaf;
    brands, colours and materials compare case-insensitively; a price bound must match to
    the cent. "extracted when not stated" counts rows with no label that got a value.
    """
    tally: dict[str, list[int]] = {
        k: [0, 0, 0]
        for k in (
            "product type",
            "brand",
            "excluded brand",
            "colour",
            "excluded colour",
            "material",
            "price min",
            "price max",
        )
    }
    corrections: Counter[str] = Counter()

    def mark(name: str, want: Any, got: Any) -> None:
        slot = tally[name]
        if want not in ("", None):
            slot[1] += 1
            slot[0] += int(got is not None and _same(want, got))
        elif got is not None:
            slot[2] += 1

    for row in rows:
        u = understand(row.text)
        for wrong, right in u.corrections:
            corrections[f"{wrong.lower()}→{right}"] += 1
        span = u.first("product_type")
        got_type = category_for(span.value) if span else None
        want_type = category_for(row.product_type) if row.product_type else ""
        mark("product type", want_type, got_type)
        mark("brand", row.brand, _first(u.values("brand")))
        mark("excluded brand", row.exclude_brand, _first(u.values("brand", negated=True)))
        mark("colour", row.colour, _first(u.values("colour")))
        mark("excluded colour", row.exclude_colour, _first(u.values("colour", negated=True)))
        mark("material", row.material, _first(u.values("material")))
        mark("price min", row.price_min, u.price.min if u.price else None)
        mark("price max", row.price_max, u.price.max if u.price else None)
    return UnderstandingReport({k: (v[0], v[1], v[2]) for k, v in tally.items()}, corrections)


def _first(values: Sequence[str]) -> str | None:
    return values[0] if values else None


def _same(want: Any, got: Any) -> bool:
    if isinstance(want, float) or isinstance(got, float):
        try:
            return abs(float(want) - float(got)) < 0.005
        except (TypeError, ValueError):
            return False
    return str(want).strip().lower() == str(got).strip().lower()
