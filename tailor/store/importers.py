"""Catalog importers (DummyJSON, CSV) with a per-row error report.

Bad rows are skipped and reported as :class:`RowError` (where, which field, what value, why);
every other row is imported. Products are matched by sku, so importing the same file twice
updates instead of duplicating. Each importer opens its own transactions (1000 rows each).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from tailor.store.catalog import ProductRecord, ReviewRecord, UpsertCounts, upsert_products
from tailor.store.db import session_scope
from tailor.store.models import CONTENT_FIELDS

__all__ = [
    "CSV_FIELDS",
    "DUMMYJSON_CATEGORIES",
    "REQUIRED_CSV_FIELDS",
    "ImportSummary",
    "RowError",
    "import_csv",
    "import_dummyjson",
    "infer_colour",
    "infer_material",
]

#: Our field names a CSV column can feed (``mapping`` keys).
CSV_FIELDS: tuple[str, ...] = ("sku", *CONTENT_FIELDS, "image_url")

#: Fields every CSV must provide a column for.
REQUIRED_CSV_FIELDS: tuple[str, ...] = ("title", "price", "category")

#: Other column names accepted for a field when no mapping is given.
_COLUMN_ALIASES: dict[str, tuple[str, ...]] = {"colour": ("color",)}

#: DummyJSON category slug → our ``"Top > Leaf"`` path.
DUMMYJSON_CATEGORIES: dict[str, str] = {
    "beauty": "Beauty > Makeup",
    "fragrances": "Beauty > Fragrances",
    "skin-care": "Beauty > Skincare",
    "furniture": "Furniture > Home Furniture",
    "home-decoration": "Home > Decor",
    "kitchen-accessories": "Kitchen > Kitchen Tools",
    "groceries": "Food & Drink > Groceries",
    "laptops": "Computers > Laptops",
    "tablets": "Computers > Tablets",
    "smartphones": "Phones > Smartphones",
    "mobile-accessories": "Phones > Mobile Accessories",
    "mens-shirts": "Clothing > Mens Shirts",
    "tops": "Clothing > Womens Tops",
    "womens-dresses": "Clothing > Dresses",
    "mens-shoes": "Shoes > Mens Shoes",
    "womens-shoes": "Shoes > Womens Shoes",
    "mens-watches": "Watches > Mens Watches",
    "womens-watches": "Watches > Womens Watches",
    "womens-bags": "Bags > Handbags",
    "womens-jewellery": "Jewellery > Womens Jewellery",
    "sunglasses": "Accessories > Sunglasses",
    "sports-accessories": "Sports > Sports Equipment",
    "motorcycle": "Vehicles > Motorcycles",
    "vehicle": "Vehicles > Cars",
}

_BATCH = 1000
_MAX_RENDERED_ERRORS = 50

# Colour and material words found in free text → canonical names (longest phrases first).
_COLOUR_WORDS: dict[str, str] = {
    "navy blue": "navy",
    "navy": "navy",
    "black": "black",
    "white": "white",
    "blue": "blue",
    "red": "red",
    "green": "green",
    "grey": "grey",
    "gray": "grey",
    "pink": "pink",
    "beige": "beige",
    "brown": "brown",
    "purple": "purple",
    "yellow": "yellow",
    "orange": "orange",
    "silver": "silver",
    "gold": "gold",
    "golden": "gold",
}
_MATERIAL_WORDS: dict[str, str] = {
    "stainless steel": "stainless steel",
    "carbon steel": "carbon steel",
    "cast iron": "cast iron",
    "faux leather": "faux leather",
    "sterling silver": "sterling silver",
    "merino wool": "merino wool",
    "organic cotton": "organic cotton",
    "gold-plated": "gold-plated",
    "leather": "leather",
    "suede": "suede",
    "cotton": "cotton",
    "denim": "denim",
    "linen": "linen",
    "silk": "silk",
    "wool": "wool",
    "cashmere": "cashmere",
    "fleece": "fleece",
    "polyester": "polyester",
    "nylon": "nylon",
    "mesh": "mesh",
    "canvas": "canvas",
    "rubber": "rubber",
    "aluminium": "aluminium",
    "aluminum": "aluminium",
    "titanium": "titanium",
    "steel": "steel",
    "wooden": "wood",
    "wood": "wood",
    "oak": "oak",
    "walnut": "walnut",
    "bamboo": "bamboo",
    "plastic": "plastic",
    "glass": "glass",
    "ceramic": "ceramic",
    "porcelain": "porcelain",
    "silicone": "silicone",
    "cork": "cork",
    "terracotta": "terracotta",
    "rattan": "rattan",
}


def _word_pattern(words: Iterable[str]) -> re.Pattern[str]:
    alternatives = sorted(words, key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(map(re.escape, alternatives)) + r")\b", re.IGNORECASE)


_COLOUR_RE = _word_pattern(_COLOUR_WORDS)
_MATERIAL_RE = _word_pattern(_MATERIAL_WORDS)


def _infer(pattern: re.Pattern[str], table: dict[str, str], *texts: str | None) -> str | None:
    for text in texts:
        if text and (m := pattern.search(text)):
            return table[m.group(1).lower()]
    return None


def infer_colour(*texts: str | None) -> str | None:
    """The first palette colour named in the texts (searched in order), e.g. "Gray Dress" →
    "grey"; ``None`` when none is named."""
    return _infer(_COLOUR_RE, _COLOUR_WORDS, *texts)


def infer_material(*texts: str | None) -> str | None:
    """The first canonical material named in the texts (searched in order), e.g.
    "Wooden Bathroom Sink" → "wood"; ``None`` when none is named."""
    return _infer(_MATERIAL_RE, _MATERIAL_WORDS, *texts)


@dataclass
class RowError:
    """Why one input row (or one field of it) was rejected.

    ``row`` is the file line where the row starts for CSV (the header is line 1, so the first
    data row is 2) and the 1-based position in the product list for DummyJSON.
    """

    row: int
    field: str
    value: Any
    message: str
    label: str = "row"

    def __str__(self) -> str:
        return f"{self.label} {self.row}, field {self.field!r}: {self.value!r} {self.message}"


@dataclass
class ImportSummary:
    """What an import did. ``updated`` counts rows whose sku already existed (``unchanged`` of
    them needed no change); ``reviews`` counts reviews stored for the imported rows."""

    imported: int = 0
    updated: int = 0
    skipped: int = 0
    errors: list[RowError] = field(default_factory=list)
    reviews: int = 0
    unchanged: int = 0
    rows: int = 0
    source: str = ""

    def render(self, max_errors: int = _MAX_RENDERED_ERRORS) -> str:
        """A human-readable multi-line summary listing the errors (up to ``max_errors``)."""
        head = f"Imported {self.imported}, updated {self.updated}"
        if self.unchanged:
            head += f" ({self.unchanged} unchanged)"
        head += f", skipped {self.skipped} row{'s' if self.skipped != 1 else ''}"
        head += f" of {self.rows} read" if self.rows else ""
        if self.reviews:
            head += f"; {self.reviews} reviews"
        if self.source:
            head += f" from {self.source}"
        if not self.errors:
            return head + "."
        lines = [head + ":"]
        lines.extend(f"  {e}" for e in self.errors[:max_errors])
        if len(self.errors) > max_errors:
            lines.append(f"  … and {len(self.errors) - max_errors} more errors")
        return "\n".join(lines)

    def _add(self, counts: UpsertCounts, reviews: int) -> None:
        self.imported += counts.inserted
        self.updated += counts.updated + counts.unchanged
        self.unchanged += counts.unchanged
        self.reviews += reviews


class _FieldError(ValueError):
    """A value that cannot be used; the message completes "<value> …"."""


# --- value parsers ---------------------------------------------------------------------------

_THOUSANDS = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?")


def _text(value: Any) -> str:
    return "" if value is None else re.sub(r"\s+", " ", str(value)).strip()


def _required_text(value: Any, name: str) -> str:
    text = _text(value)
    if not text:
        raise _FieldError(f"is empty; {name} is required")
    return text


def _optional_text(value: Any) -> str | None:
    return _text(value) or None


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise _FieldError("is not a number")
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = _text(value).lstrip("$€£¥").strip()
        if _THOUSANDS.fullmatch(text):
            text = text.replace(",", "")
        try:
            number = float(text)
        except ValueError:
            raise _FieldError("is not a number") from None
    if not math.isfinite(number):
        raise _FieldError("is not a finite number")
    return number


def _price(value: Any) -> float:
    if _text(value) == "":
        raise _FieldError("is empty; price is required")
    number = _number(value)
    if number < 0:
        raise _FieldError("is negative; prices must be 0 or more")
    return round(number, 2)


def _rating(value: Any) -> float | None:
    if value is None or _text(value) == "":
        return None
    number = _number(value)
    if not 0 <= number <= 5:
        raise _FieldError("is outside 0-5; ratings must be between 0 and 5")
    return number


def _whole(value: Any, default: int, name: str) -> int:
    if value is None or _text(value) == "":
        return default
    number = _number(value)
    if not number.is_integer():
        raise _FieldError(f"is not a whole number; {name} must be an integer")
    if number < 0:
        raise _FieldError(f"is negative; {name} must be 0 or more")
    return int(number)


def _currency(value: Any) -> str:
    text = _text(value).upper()
    if not text:
        return "USD"
    if not re.fullmatch(r"[A-Z]{3}", text):
        raise _FieldError("is not a 3-letter currency code such as USD or EUR")
    return text


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        items = [_text(v) for v in value]
    else:
        text = _text(value)
        items = text.split("|") if "|" in text else text.split(",")
    return [i.strip() for i in items if i and i.strip()]


def _category(value: Any) -> str:
    text = _required_text(value, "category")
    parts = [p.strip() for p in text.split(">")]
    if any(not p for p in parts):
        raise _FieldError("has an empty level; use paths like 'Shoes > Running Shoes'")
    return " > ".join(parts)


def _lower_or_none(value: Any) -> str | None:
    text = _text(value).lower()
    return text or None


def _progress(desc: str, enabled: bool, total: int | None = None) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="row", file=sys.stderr, disable=not enabled)


def _write(
    session_factory: sessionmaker[Session],
    records: Iterator[ProductRecord],
    summary: ImportSummary,
    replace_reviews: bool,
) -> None:
    batch: list[ProductRecord] = []

    def flush() -> None:
        if not batch:
            return
        with session_scope(session_factory) as session:
            counts = upsert_products(session, batch, replace_reviews=replace_reviews)
        summary._add(counts, sum(len(r.reviews) for r in batch) if replace_reviews else 0)
        batch.clear()

    for record in records:
        batch.append(record)
        if len(batch) >= _BATCH:
            flush()
    flush()


# --- DummyJSON -----------------------------------------------------------------------------


def _dummyjson_category(slug: str) -> str:
    if slug in DUMMYJSON_CATEGORIES:
        return DUMMYJSON_CATEGORIES[slug]
    return " ".join(w.capitalize() for w in re.split(r"[-_\s]+", slug) if w)


def _dummyjson_date(value: Any) -> datetime | None:
    text = _text(value)
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _FieldError("is not an ISO date such as 2025-04-30T09:41:02Z") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _dummyjson_record(item: Any, position: int, errors: list[RowError]) -> ProductRecord | None:
    """One DummyJSON product as a record, or ``None`` (with errors appended) when invalid."""

    def fail(name: str, value: Any, message: str) -> None:
        errors.append(RowError(position, name, value, message, label="product"))

    if not isinstance(item, Mapping):
        fail("product", item, "is not an object")
        return None
    failed = len(errors)
    parsed: dict[str, Any] = {}
    checks = (
        ("id", lambda v: _whole(v, -1, "id")),
        ("title", lambda v: _required_text(v, "title")),
        ("category", lambda v: _required_text(v, "category")),
        ("price", _price),
        ("rating", _rating),
        ("stock", lambda v: _whole(v, 0, "stock")),
    )
    for name, parse in checks:
        try:
            parsed[name] = parse(item.get(name))
        except _FieldError as exc:
            fail(name, item.get(name), str(exc))
    if "id" in parsed and parsed["id"] < 0:
        fail("id", item.get("id"), "is missing; every product needs an id")
    tags = item.get("tags") or []
    if not isinstance(tags, list):
        fail("tags", tags, "is not a list")
        tags = []
    images = item.get("images") or []
    if not isinstance(images, list):
        fail("images", images, "is not a list")
    raw_reviews = item.get("reviews") or []
    if not isinstance(raw_reviews, list):
        fail("reviews", raw_reviews, "is not a list")
        raw_reviews = []
    reviews: list[ReviewRecord] = []
    for j, raw in enumerate(raw_reviews, 1):
        where = f"reviews[{j}]"
        if not isinstance(raw, Mapping):
            fail(where, raw, "is not an object")
            continue
        try:
            stars = _whole(raw.get("rating"), -1, "rating")
            if not 1 <= stars <= 5:
                raise _FieldError("is outside 1-5; review ratings must be 1 to 5")
        except _FieldError as exc:
            fail(f"{where}.rating", raw.get("rating"), str(exc))
            continue
        try:
            created = _dummyjson_date(raw.get("date"))
        except _FieldError as exc:
            fail(f"{where}.date", raw.get("date"), str(exc))
            continue
        reviews.append(
            ReviewRecord(
                rating=stars,
                text=_text(raw.get("comment")),
                author=_optional_text(raw.get("reviewerName")),
                created_at=created,
            )
        )
    if len(errors) > failed:
        return None
    title = parsed["title"]
    description = _text(item.get("description"))
    attributes = {
        "dummyjson_id": parsed["id"],
        "source_sku": item.get("sku"),
        "discount_percentage": item.get("discountPercentage"),
        "availability": item.get("availabilityStatus"),
        "warranty": item.get("warrantyInformation"),
        "shipping": item.get("shippingInformation"),
        "return_policy": item.get("returnPolicy"),
        "minimum_order_quantity": item.get("minimumOrderQuantity"),
        "images": images,
    }
    return ProductRecord(
        sku=f"dummyjson-{parsed['id']}",
        title=title,
        description=description,
        category=_dummyjson_category(parsed["category"]),
        brand=_optional_text(item.get("brand")),
        price=parsed["price"],
        currency="USD",
        colour=infer_colour(title, description),
        material=infer_material(title, description),
        sizes=[],
        rating=parsed["rating"],
        review_count=len(reviews),
        stock=parsed["stock"],
        tags=[_text(t) for t in tags if _text(t)],
        image_url=_optional_text(item.get("thumbnail")),
        attributes={k: v for k, v in attributes.items() if v not in (None, [])},
        source="dummyjson",
        reviews=reviews,
    )


def import_dummyjson(
    session_factory: sessionmaker[Session], path: str | Path, progress: bool = False
) -> ImportSummary:
    """Import a DummyJSON products file (a list, or ``{"products": [...]}``) with its reviews.

    Skus are ``dummyjson-<id>``; categories map through :data:`DUMMYJSON_CATEGORIES` (unknown
    slugs are title-cased); colour and material are inferred from the title, then the
    description. Invalid products are skipped and reported; a product with an invalid review
    is skipped as a whole so its review list stays complete.
    """
    path = Path(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    items = data.get("products") if isinstance(data, Mapping) else data
    if not isinstance(items, list):
        raise ValueError(
            f"{path.name}: expected a JSON list of products or an object with a 'products' list"
        )
    summary = ImportSummary(rows=len(items), source=path.name)

    def records() -> Iterator[ProductRecord]:
        with _progress("products", progress, total=len(items)) as bar:
            for position, item in enumerate(items, 1):
                record = _dummyjson_record(item, position, summary.errors)
                if record is None:
                    summary.skipped += 1
                else:
                    yield record
                bar.update(1)

    _write(session_factory, records(), summary, replace_reviews=True)
    return summary


# --- CSV -----------------------------------------------------------------------------------


def _read_text(path: Path, encoding: str | None) -> str:
    raw = path.read_bytes()
    if encoding:
        return raw.decode(encoding)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _delimiter(header_line: str, path: Path) -> str:
    if path.suffix.lower() == ".tsv":
        return "\t"
    counts = {d: header_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _resolve_columns(
    header: list[str], mapping: Mapping[str, str] | None, name: str
) -> dict[str, int]:
    """Our field → column index; raises ``ValueError`` naming what is wrong."""
    mapping = dict(mapping or {})
    unknown = sorted(set(mapping) - set(CSV_FIELDS))
    if unknown:
        raise ValueError(
            f"Unknown field(s) {', '.join(map(repr, unknown))} in mapping; valid fields are: "
            f"{', '.join(CSV_FIELDS)}"
        )
    positions = {col.strip(): i for i, col in enumerate(header)}
    folded = {col.strip().casefold(): i for i, col in enumerate(header)}
    columns: dict[str, int] = {}
    for fld, column in mapping.items():
        if column.strip() not in positions:
            raise ValueError(
                f"Column {column!r} (mapped to field {fld!r}) is not in {name}; its columns "
                f"are: {', '.join(h.strip() for h in header)}"
            )
        columns[fld] = positions[column.strip()]
    for fld in CSV_FIELDS:
        if fld in columns:
            continue
        for candidate in (fld, *_COLUMN_ALIASES.get(fld, ())):
            if candidate.casefold() in folded:
                columns[fld] = folded[candidate.casefold()]
                break
    for fld in REQUIRED_CSV_FIELDS:
        if fld not in columns:
            raise ValueError(
                f"{name} has no column for required field {fld!r} (looked for a column named "
                f"{fld!r}); its columns are: {', '.join(h.strip() for h in header)}. "
                f"Map one with mapping={{{fld!r}: '<column>'}}"
            )
    return columns


_CSV_PARSERS: dict[str, Any] = {
    "title": lambda v: _required_text(v, "title"),
    "description": _text,
    "category": _category,
    "brand": _optional_text,
    "price": _price,
    "currency": _currency,
    "colour": _lower_or_none,
    "material": _lower_or_none,
    "sizes": _list,
    "rating": _rating,
    "review_count": lambda v: _whole(v, 0, "review_count"),
    "tags": _list,
    "image_url": _optional_text,
}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "file"


def import_csv(
    session_factory: sessionmaker[Session],
    path: str | Path,
    mapping: dict[str, str] | None = None,
    progress: bool = False,
    *,
    default_stock: int = 1,
    encoding: str | None = None,
) -> ImportSummary:
    """Import products from a CSV file; bad rows are skipped and reported.

    ``mapping`` maps our field names (:data:`CSV_FIELDS`) to column names; fields left out
    use a column of the same name (any case; "color" also feeds colour). ``title``,
    ``price`` and ``category`` need a column. List fields (sizes, tags) split on "|" if
    present, else ",". Without a sku column, skus are ``csv-<file stem>-<line>``. An empty or
    missing stock counts as ``default_stock`` (so a file without stock is shown as
    available). Errors report the file line where the row starts (the header is line 1).
    The text is read as UTF-8 (BOM allowed), falling back to Latin-1, unless ``encoding``.
    """
    path = Path(path)
    text = _read_text(path, encoding)
    first_line = text.split("\n", 1)[0]
    # The whole file is already in memory, so the csv module's per-field cap (128 KiB) guards
    # nothing here; without raising it one long description aborts the whole import.
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first_line, path))
    try:
        header = next(reader)
    except StopIteration:
        raise ValueError(f"{path.name} is empty; expected a header row") from None
    columns = _resolve_columns(header, mapping, path.name)
    summary = ImportSummary(source=path.name)
    stem = _slug(path.stem)

    def records() -> Iterator[ProductRecord]:
        seen: dict[str, int] = {}
        previous_end = reader.line_num
        with _progress("rows", progress) as bar:
            for cells in reader:
                line = previous_end + 1
                previous_end = reader.line_num
                if not any(c.strip() for c in cells):
                    continue
                summary.rows += 1
                bar.update(1)

                def cell(fld: str, cells: list[str] = cells) -> str | None:
                    i = columns.get(fld)
                    return cells[i] if i is not None and i < len(cells) else None

                values: dict[str, Any] = {}
                row_errors: list[RowError] = []
                for fld, parse in _CSV_PARSERS.items():
                    if fld not in columns and fld not in REQUIRED_CSV_FIELDS:
                        continue
                    try:
                        values[fld] = parse(cell(fld))
                    except _FieldError as exc:
                        row_errors.append(RowError(line, fld, cell(fld) or "", str(exc)))
                try:
                    values["stock"] = _whole(cell("stock"), default_stock, "stock")
                except _FieldError as exc:
                    row_errors.append(RowError(line, "stock", cell("stock") or "", str(exc)))
                sku = _text(cell("sku")) or f"csv-{stem}-{line}"
                if sku in seen:
                    row_errors.append(
                        RowError(line, "sku", sku, f"repeats the sku of line {seen[sku]}")
                    )
                if row_errors:
                    summary.errors.extend(row_errors)
                    summary.skipped += 1
                    continue
                seen[sku] = line
                values.setdefault("currency", "USD")
                yield ProductRecord(sku=sku, source="csv", **values)

    _write(session_factory, records(), summary, replace_reviews=False)
    return summary
