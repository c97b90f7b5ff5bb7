"""Shopping criteria kept across turns, and how one turn changes them.

Pure logic: no Rasa, no database. The action reads slots into :class:`Criteria`, calls
:func:`apply_turn` with the latest message, and writes the result back to slots.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from tailor.nlu.negation import is_negated
from tailor.nlu.price import parse_price
from tailor.nlu.refine import detect_refinement
from tailor.nlu.vocab import Vocabulary
from tailor.retrieval.filters import Filter

Mode = Literal["new", "refine", "more", "similar", "exclude_shown"]

#: Slot names the criteria live in (the domain declares the same names).
CRITERIA_SLOTS: tuple[str, ...] = (
    "product_type",
    "category",
    "brand",
    "exclude_brands",
    "colour",
    "exclude_colours",
    "material",
    "size",
    "price_min",
    "price_max",
    "query",
    "similar_to",
)


@dataclass(frozen=True)
class Criteria:
    """Everything the shopper has asked for in the current search."""

    product_type: str | None = None
    category: str | None = None
    brands: tuple[str, ...] = ()
    exclude_brands: tuple[str, ...] = ()
    colour: str | None = None
    exclude_colours: tuple[str, ...] = ()
    material: str | None = None
    size: str | None = None
    price_min: float | None = None
    price_max: float | None = None
    query: str | None = None
    similar_to: int | None = None

    def is_empty(self) -> bool:
        """True when nothing has been asked for yet."""
        return self == Criteria()

    def to_filter(self, exclude_ids: Sequence[int] = (), in_stock: bool = True) -> Filter:
        """The exact metadata filter these criteria impose on every suggestion."""
        return Filter(
            categories=(self.category,) if self.category else (),
            brands=self.brands,
            exclude_brands=self.exclude_brands,
            colours=(self.colour,) if self.colour else (),
            exclude_colours=self.exclude_colours,
            materials=(self.material,) if self.material else (),
            sizes=(self.size,) if self.size else (),
            price_min=self.price_min,
            price_max=self.price_max,
            in_stock=in_stock,
            exclude_ids=tuple(int(i) for i in exclude_ids),
        )

    def query_text(self) -> str:
        """The text embedded for semantic search: the request plus the named attributes."""
        parts = [self.query or ""]
        for extra in (self.colour, self.material, self.product_type):
            if extra and extra.lower() not in (self.query or "").lower():
                parts.append(extra)
        if not any(p.strip() for p in parts) and self.category:
            parts.append(self.category.split(" > ")[-1])
        return " ".join(p for p in parts if p).strip()

    def describe(self) -> str:
        """A short human phrase, e.g. ``running shoes in blue under $80, not Nike``."""
        what = self.product_type or (
            self.category.split(" > ")[-1].lower() if self.category else ""
        )
        bits: list[str] = []
        if self.brands:
            bits.append("from " + " or ".join(self.brands))
        if self.colour:
            bits.append(f"in {self.colour}")
        if self.material:
            bits.append(f"in {self.material}")
        if self.size:
            bits.append(f"size {self.size}")
        bits.append(_price_phrase(self.price_min, self.price_max))
        nots = list(self.exclude_brands) + list(self.exclude_colours)
        if nots:
            bits.append("not " + ", ".join(nots))
        if not what and any(bits):
            what = "products"  # "products from Lego", not "from Lego"
        text = " ".join(b for b in [what, *bits] if b).strip()
        return text or (self.query or "anything")

    def to_slots(self) -> dict[str, Any]:
        """Slot values (JSON-safe) for these criteria."""
        return {
            "product_type": self.product_type,
            "category": self.category,
            "brand": list(self.brands) or None,
            "exclude_brands": list(self.exclude_brands) or None,
            "colour": self.colour,
            "exclude_colours": list(self.exclude_colours) or None,
            "material": self.material,
            "size": self.size,
            "price_min": self.price_min,
            "price_max": self.price_max,
            "query": self.query,
            "similar_to": str(self.similar_to) if self.similar_to is not None else None,
        }

    @classmethod
    def from_slots(cls, slots: Mapping[str, Any]) -> Criteria:
        """Read criteria back from slot values; tolerant of missing or mistyped slots."""

        def as_text(value: Any) -> str | None:
            # A slot set by a client or an old tracker may hold anything JSON allows; only
            # text (and a number, e.g. a size of 10) is read, the rest is dropped.
            if isinstance(value, bool):
                return None
            if isinstance(value, int | float) and math.isfinite(value):
                return str(value)
            return value if isinstance(value, str) and value else None

        def as_tuple(value: Any) -> tuple[str, ...]:
            items = value if isinstance(value, list | tuple) else [value]
            return tuple(t for t in map(as_text, items) if t is not None)

        def as_float(value: Any) -> float | None:
            if isinstance(value, bool) or value in (None, ""):
                return None
            try:
                number = float(value)
            except (TypeError, ValueError, OverflowError):
                return None
            return number if math.isfinite(number) else None

        similar = slots.get("similar_to")
        try:
            similar_id = (
                None if similar in (None, "") or isinstance(similar, bool) else int(similar)
            )
        except (TypeError, ValueError, OverflowError):
            similar_id = None
        return cls(
            product_type=as_text(slots.get("product_type")),
            category=as_text(slots.get("category")),
            brands=as_tuple(slots.get("brand")),
            exclude_brands=as_tuple(slots.get("exclude_brands")),
            colour=as_text(slots.get("colour")),
            exclude_colours=as_tuple(slots.get("exclude_colours")),
            material=as_text(slots.get("material")),
            size=as_text(slots.get("size")),
            price_min=as_float(slots.get("price_min")),
            price_max=as_float(slots.get("price_max")),
            query=as_text(slots.get("query")),
            similar_to=similar_id,
        )


@dataclass(frozen=True)
class ShownProduct:
    """What the action remembers about a product it showed (slot ``shown``)."""

    id: int
    price: float
    brand: str | None = None
    colour: str | None = None

    def to_slot(self) -> dict[str, Any]:
        """JSON-safe slot value."""
        return {"id": self.id, "price": self.price, "brand": self.brand, "colour": self.colour}

    @classmethod
    def from_slot(cls, value: Any) -> ShownProduct | None:
        """Parse one slot entry; ``None`` if it is malformed."""
        try:
            if isinstance(value, Mapping):
                price = float(value.get("price") or 0.0)
                brand, colour = value.get("brand"), value.get("colour")
                return cls(
                    id=int(value["id"]),
                    price=price if math.isfinite(price) else 0.0,
                    brand=brand if isinstance(brand, str) else None,
                    colour=colour if isinstance(colour, str) else None,
                )
            if isinstance(value, bool):
                return None
            return cls(id=int(value), price=0.0)
        except (KeyError, TypeError, ValueError, OverflowError):  # int(inf) overflows
            return None


def shown_from_slot(value: Any) -> list[ShownProduct]:
    """The ``shown`` slot as a list, dropping malformed entries."""
    items = [ShownProduct.from_slot(v) for v in (value or [])]
    return [s for s in items if s is not None]


@dataclass(frozen=True)
class Entity:
    """An entity of the latest message, as Rasa reports it."""

    entity: str
    value: str
    start: int | None = None
    end: int | None = None

    @classmethod
    def from_rasa(cls, raw: Mapping[str, Any]) -> Entity:
        """From Rasa's entity dict (``entity``, ``value``, ``start``, ``end``)."""

        def offset(value: Any) -> int | None:
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        return cls(
            entity=str(raw.get("entity", "")),
            value=str(raw.get("value", "")),
            start=offset(raw.get("start")),
            end=offset(raw.get("end")),
        )


@dataclass(frozen=True)
class TurnResult:
    """What :func:`apply_turn` decided: new criteria, how to search, notes for the reply."""

    criteria: Criteria
    mode: Mode
    exclude_ids: tuple[int, ...] = ()
    reset_seen: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)
    unknown: tuple[str, ...] = field(default_factory=tuple)


def _price_phrase(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"between ${lo:,.2f} and ${hi:,.2f}".replace(".00", "")
    if hi is not None:
        return f"under ${hi:,.2f}".replace(".00", "")
    if lo is not None:
        return f"over ${lo:,.2f}".replace(".00", "")
    return ""


def _dedupe(items: Sequence[str]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for item in items:
        seen.setdefault(item.lower(), item)
    return tuple(seen.values())


def _without(items: Sequence[str], value: str) -> tuple[str, ...]:
    return tuple(i for i in items if i.lower() != value.lower())


#: When extractors tag one span twice ("blue" as colour and as a brand), the first wins.
def merge_entities(primary: Sequence[Entity], extra: Sequence[Entity]) -> list[Entity]:
    """``primary`` (what Rasa found) plus those of ``extra`` (query understanding: typos,
    plurals) that overlap no primary entity and add a kind or value Rasa did not report."""
    merged = list(primary)
    for ent in extra:
        overlaps = any(
            p.start is not None
            and p.end is not None
            and ent.start is not None
            and ent.end is not None
            and p.start < ent.end
            and ent.start < p.end
            for p in primary
        )
        same = any(
            p.entity == ent.entity and (p.value or "").lower() == (ent.value or "").lower()
            for p in primary
        )
        if not overlaps and not same:
            merged.append(ent)
    return merged


SPAN_PRIORITY: tuple[str, ...] = ("price", "colour", "material", "size", "product_type", "brand")


def resolve_overlaps(entities: Sequence[Entity]) -> list[Entity]:
    """Keep one entity per overlapping span, by :data:`SPAN_PRIORITY`; order is preserved."""
    rank = {name: i for i, name in enumerate(SPAN_PRIORITY)}
    kept: list[Entity] = []
    for ent in sorted(entities, key=lambda e: rank.get(e.entity, len(rank))):
        if (
            ent.start is not None
            and ent.end is not None
            and any(
                k.start is not None
                and k.end is not None
                and k.start < ent.end
                and ent.start < k.end
                and k.entity != ent.entity
                for k in kept
            )
        ):
            continue
        kept.append(ent)
    order = {id(e): i for i, e in enumerate(entities)}
    return sorted(kept, key=lambda e: order[id(e)])


def apply_turn(
    current: Criteria,
    intent: str,
    text: str,
    entities: Sequence[Entity],
    vocab: Vocabulary,
    shown: Sequence[ShownProduct] = (),
    similar_target: int | None = None,
    semantic: str | None = None,
) -> TurnResult:
    """Fold one shopper message into the criteria.

    ``intent`` is one of ask_recommendation, refine, react_negative or affirm (show more).
    A new request for another kind of product starts a fresh search; everything else
    narrows or adjusts the current one. Negated entities ("not red", "I don't like Nike")
    become exclusions. ``similar_target`` is the product a "more like that one" points to.
    ``semantic`` is the part of ``text`` left for semantic search once the constraints are
    taken out (:mod:`tailor.nlu.understand`); without it the whole text is the query.
    """
    query = (text if semantic is None else semantic).strip() or None
    notes: list[str] = []
    unknown: list[str] = []
    entities = resolve_overlaps(entities)
    refinement = next(
        (e.value for e in entities if e.entity == "refinement" and e.value), None
    ) or detect_refinement(text)

    # Which product type does this message name?
    named_type: str | None = None
    named_category: str | None = None
    for ent in entities:
        if ent.entity == "product_type" and ent.value:
            named_type = ent.value.lower()
            named_category = vocab.category_for(ent.value)
            break

    crit = current
    mode: Mode = "refine"
    reset_seen = False
    if intent == "ask_recommendation":
        mode = "new"
        changes_type = named_type is not None and (
            named_category != current.category
            or (named_category is None and named_type != current.product_type)
        )
        if changes_type or current.is_empty():
            crit = Criteria(query=query)
            reset_seen = True
        else:
            crit = replace(current, query=query or current.query, similar_to=None)
        if named_type:
            crit = replace(crit, product_type=named_type, category=named_category)
    elif intent == "affirm":
        return TurnResult(criteria=current, mode="more")

    crit = _apply_entities(
        crit, text, entities, vocab, notes, unknown, negative=intent == "react_negative"
    )

    if intent == "react_negative":
        negative_named = any(e.entity in ("brand", "colour", "material") for e in entities)
        if refinement is None and not negative_named:
            # "meh", "not my style": keep the criteria, show different products.
            return TurnResult(
                criteria=crit,
                mode="exclude_shown",
                exclude_ids=tuple(s.id for s in shown),
                notes=tuple(notes),
                unknown=tuple(unknown),
            )

    if intent in ("refine", "react_negative") and refinement:
        crit, mode = _apply_refinement(crit, refinement, shown, similar_target, notes)
    if mode == "refine" and intent != "ask_recommendation" and crit == current and not notes:
        mode = "more"
    if mode != "similar" and crit.similar_to is not None and intent == "ask_recommendation":
        crit = replace(crit, similar_to=None)
    return TurnResult(
        criteria=crit,
        mode=mode,
        reset_seen=reset_seen,
        notes=tuple(notes),
        unknown=tuple(unknown),
    )


def _apply_entities(
    crit: Criteria,
    text: str,
    entities: Sequence[Entity],
    vocab: Vocabulary,
    notes: list[str],
    unknown: list[str],
    negative: bool = False,
) -> Criteria:
    """Apply named attributes; in a negative reaction ("I don't like Nike") they exclude."""
    price_seen = False
    for ent in entities:
        negated = negative or (
            ent.start is not None
            and ent.end is not None
            and 0 <= ent.start <= ent.end <= len(text)  # a span of another text is ignored
            and is_negated(text, ent.start, ent.end)
        )
        if ent.entity == "brand":
            brand = vocab.brand(ent.value)
            if brand is None:
                unknown.append(f"brand '{ent.value}'")
                continue
            if negated:
                crit = replace(
                    crit,
                    exclude_brands=_dedupe([*crit.exclude_brands, brand]),
                    brands=_without(crit.brands, brand),
                )
            else:
                crit = replace(
                    crit, brands=(brand,), exclude_brands=_without(crit.exclude_brands, brand)
                )
        elif ent.entity == "colour":
            colour = vocab.colour(ent.value)
            if colour is None:
                unknown.append(f"colour '{ent.value}'")
                continue
            if negated:
                crit = replace(
                    crit,
                    exclude_colours=_dedupe([*crit.exclude_colours, colour]),
                    colour=None if (crit.colour or "").lower() == colour.lower() else crit.colour,
                )
            else:
                crit = replace(
                    crit, colour=colour, exclude_colours=_without(crit.exclude_colours, colour)
                )
        elif ent.entity == "material":
            material = vocab.material(ent.value)
            if material is None:
                unknown.append(f"material '{ent.value}'")
                continue
            if negated:
                if (crit.material or "").lower() == material.lower():
                    crit = replace(crit, material=None)
            else:
                crit = replace(crit, material=material)
        elif ent.entity == "size":
            size = ent.value.strip()
            for prefix in ("size ", "sz "):
                if size.lower().startswith(prefix):
                    size = size[len(prefix) :].strip()
            crit = replace(crit, size=size.upper() if size.isalpha() else size)
        elif ent.entity == "price" and not price_seen:
            rng = parse_price(ent.value) or parse_price(text)
            if rng is not None:
                price_seen = True
                crit = _with_price(crit, rng.min, rng.max)
    if not price_seen:
        rng = parse_price(text)
        if rng is not None:
            crit = _with_price(crit, rng.min, rng.max)
    return crit


def _with_price(crit: Criteria, lo: float | None, hi: float | None) -> Criteria:
    """New bounds replace old ones; an old bound survives only if consistent with the new."""
    new_lo = lo if lo is not None else crit.price_min
    new_hi = hi if hi is not None else crit.price_max
    if new_lo is not None and new_hi is not None and new_lo > new_hi:
        if lo is None:
            new_lo = None
        else:
            new_hi = None
    return replace(crit, price_min=new_lo, price_max=new_hi)


def _apply_refinement(
    crit: Criteria,
    refinement: str,
    shown: Sequence[ShownProduct],
    similar_target: int | None,
    notes: list[str],
) -> tuple[Criteria, Mode]:
    priced = [s.price for s in shown if s.price > 0]
    if refinement == "cheaper":
        if priced:
            ceiling = round(min(priced) - 0.01, 2)
        elif crit.price_max is not None:
            ceiling = round(crit.price_max * 0.8, 2)
        else:
            notes.append("no_reference_price")
            return crit, "refine"
        lo = crit.price_min if crit.price_min is not None and crit.price_min <= ceiling else None
        return replace(crit, price_max=ceiling, price_min=lo), "refine"
    if refinement == "pricier":
        if priced:
            floor = round(max(priced) + 0.01, 2)
        elif crit.price_min is not None:
            floor = round(crit.price_min * 1.25, 2)
        else:
            notes.append("no_reference_price")
            return crit, "refine"
        # Asking for pricier ones lifts the earlier budget: it was said before, this overrides.
        return replace(crit, price_min=floor, price_max=None), "refine"
    if refinement == "other_colour":
        colours = [s.colour for s in shown if s.colour]
        if crit.colour:
            colours.append(crit.colour)
        return (
            replace(crit, colour=None, exclude_colours=_dedupe([*crit.exclude_colours, *colours])),
            "refine",
        )
    if refinement == "other_brand":
        brands = [s.brand for s in shown if s.brand]
        brands.extend(crit.brands)
        return (
            replace(crit, brands=(), exclude_brands=_dedupe([*crit.exclude_brands, *brands])),
            "refine",
        )
    if refinement == "similar":
        target = similar_target if similar_target is not None else (shown[0].id if shown else None)
        if target is None:
            notes.append("nothing_to_compare")
            return crit, "refine"
        return replace(crit, similar_to=target), "similar"
    return crit, "more"
