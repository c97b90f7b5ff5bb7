"""Importers: the real DummyJSON file, and CSV files with bad rows and custom mappings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tailor.config import PROJECT_ROOT
from tailor.store import Product, Review, make_session_factory
from tailor.store.catalog import catalog_fingerprint, count_products, distinct_values
from tailor.store.importers import (
    CSV_FIELDS,
    DUMMYJSON_CATEGORIES,
    import_csv,
    import_dummyjson,
    infer_colour,
    infer_material,
)

SHARED_DATA = Path(os.environ.get("TAILOR_SHARED_DATA") or PROJECT_ROOT.parent / "shared" / "data")
DUMMYJSON = SHARED_DATA / "catalog" / "dummyjson_products.json"

needs_dummyjson = pytest.mark.skipif(
    not DUMMYJSON.exists(),
    reason=f"shared data not found at {DUMMYJSON} (set TAILOR_SHARED_DATA to its folder)",
)


@pytest.fixture
def factory(tmp_path: Path) -> sessionmaker[Session]:
    return make_session_factory(f"sqlite:///{tmp_path / 'import.db'}")


def _count(factory: sessionmaker[Session], model: type) -> int:
    with factory() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


@needs_dummyjson
def test_dummyjson_imports_everything_and_reimport_updates(
    factory: sessionmaker[Session],
) -> None:
    first = import_dummyjson(factory, DUMMYJSON)
    assert (first.imported, first.updated, first.skipped, first.errors) == (194, 0, 0, [])
    assert first.reviews == 582
    assert _count(factory, Product) == 194 and _count(factory, Review) == 582
    with factory() as s:
        fingerprint = catalog_fingerprint(s)
        mascara = s.scalars(select(Product).where(Product.sku == "dummyjson-1")).one()
        assert mascara.source == "dummyjson" and mascara.currency == "USD"
        assert mascara.category == "Beauty > Makeup" and mascara.brand == "Essence"
        assert mascara.image_url and mascara.image_url.endswith("thumbnail.webp")
        assert mascara.review_count == len(mascara.reviews) == 3
        assert mascara.content_hash == mascara.compute_hash()
        assert set(distinct_values(s, "category")) <= set(DUMMYJSON_CATEGORIES.values())
        assert s.scalars(select(Product).where(Product.brand.is_(None))).first() is not None
        red = s.scalars(select(Product).where(Product.title == "Red Lipstick")).one()
        assert red.colour == "red"

    second = import_dummyjson(factory, DUMMYJSON)
    assert (second.imported, second.updated, second.unchanged) == (0, 194, 194)
    assert _count(factory, Product) == 194 and _count(factory, Review) == 582
    with factory() as s:
        assert catalog_fingerprint(s) == fingerprint
    assert "Imported 0, updated 194" in second.render()


def test_dummyjson_bad_products_are_reported(tmp_path: Path, factory: sessionmaker) -> None:
    path = tmp_path / "products.json"
    path.write_text(
        """{"products": [
          {"id": 1, "title": "Blue Mug", "category": "kitchen-accessories", "price": 9.5,
           "rating": 4.2, "stock": 3, "reviews": [{"rating": 5, "comment": "Nice",
           "date": "2025-04-30T09:41:02.053Z", "reviewerName": "Ann"}]},
          {"id": 2, "title": "Bad price", "category": "beauty", "price": "cheap"},
          {"id": 3, "title": "Odd", "category": "garden-gnomes", "price": 5,
           "reviews": [{"rating": 9, "comment": "?"}]}
        ]}""",
        encoding="utf-8",
    )
    summary = import_dummyjson(factory, path)
    assert (summary.imported, summary.skipped) == (1, 2)
    assert [(e.row, e.field) for e in summary.errors] == [(2, "price"), (3, "reviews[1].rating")]
    assert "product 2, field 'price': 'cheap' is not a number" in summary.render()
    with factory() as s:
        mug = s.scalars(select(Product)).one()
        assert mug.colour == "blue" and mug.category == "Kitchen > Kitchen Tools"


def test_colour_and_material_inference() -> None:
    assert infer_colour("Gray Dress") == "grey"
    assert infer_colour("Golden Shoes Woman") == "gold"
    assert infer_colour("Plain mug", "A mug in navy blue") == "navy"
    assert infer_colour("Sunglasses") is None
    assert infer_material("Wooden Rolling Pin") == "wood"
    assert infer_material("Stainless Steel Whisk") == "stainless steel"
    assert infer_material("Sun Glasses") is None


CSV_TEXT = """sku,title,description,category,brand,price,colour,sizes,tags,rating,stock
A1,Trail Runner,Grippy,Shoes > Running Shoes,Nike,89.99,Blue,8|9|10,trail|running,4.5,3
A2,Road Runner,,Shoes > Running Shoes,Adidas,abc,red,,,4.0,2
A3,City Bag,Roomy,Bags > Backpacks,Herschel,"1,299.00",black,,"commute, laptop",,
A4,Cheap Tee,,Clothing > T-Shirts,Uniqlo,-5,white,S|M,,3.0,10
A5,Nice Tee,,Clothing > T-Shirts,Uniqlo,15,white,S|M,,7.5,10
A6,Odd Stock,,Clothing > T-Shirts,Uniqlo,15,white,,,4.0,2.5

A7,,No title,Clothing > T-Shirts,Uniqlo,15,white,,,4.0,1
A8,Good Tee,,Clothing>T-Shirts,Uniqlo,$19.99,GREEN,M,,4.1,0
A1,Duplicate,,Shoes > Running Shoes,Nike,10,blue,,,4,1
"""


def test_csv_reports_exactly_the_bad_rows(tmp_path: Path, factory: sessionmaker) -> None:
    path = tmp_path / "shop.csv"
    path.write_text(CSV_TEXT, encoding="utf-8")
    summary = import_csv(factory, path)
    # Row numbers are file lines: the header is line 1, and line 8 is blank.
    assert [(e.row, e.field) for e in summary.errors] == [
        (3, "price"),
        (5, "price"),
        (6, "rating"),
        (7, "stock"),
        (9, "title"),
        (11, "sku"),
    ]
    assert (summary.imported, summary.updated, summary.skipped, summary.rows) == (3, 0, 6, 9)
    text = summary.render()
    assert text.startswith("Imported 3, updated 0, skipped 6 rows of 9 read")
    assert "row 3, field 'price': 'abc' is not a number" in text
    assert "row 5, field 'price': '-5' is negative" in text
    assert "row 6, field 'rating': '7.5' is outside 0-5" in text
    assert "row 7, field 'stock': '2.5' is not a whole number" in text
    with factory() as s:
        products = {p.sku: p for p in s.scalars(select(Product))}
        assert set(products) == {"A1", "A3", "A8"}
        a1 = products["A1"]
        assert (a1.price, a1.colour, a1.sizes) == (89.99, "blue", ["8", "9", "10"])
        assert a1.tags == ["trail", "running"] and a1.title == "Trail Runner"
        assert a1.brand == "Nike" and a1.stock == 3 and a1.rating == 4.5 and a1.source == "csv"
        a3 = products["A3"]
        assert a3.price == 1299.0 and a3.tags == ["commute", "laptop"] and a3.rating is None
        assert a3.stock == 1  # empty stock → default_stock
        a8 = products["A8"]
        assert a8.category == "Clothing > T-Shirts" and a8.price == 19.99 and a8.colour == "green"
        assert a8.stock == 0
        assert a1.content_hash == a1.compute_hash()

    again = import_csv(factory, path)
    assert (again.imported, again.updated, again.skipped) == (0, 3, 6)
    with factory() as s:
        assert count_products(s) == 3


def test_csv_mapping_and_generated_skus(tmp_path: Path, factory: sessionmaker) -> None:
    path = tmp_path / "Supplier Feed.csv"
    path.write_text(
        "Name;Cost;Section;Maker;Colour\n"
        "Desk Lamp;24.50;Home > Lamps;IKEA;black\n"
        "Floor Lamp;80;Home > Lamps;IKEA;\n",
        encoding="utf-8",
    )
    mapping = {"title": "Name", "price": "Cost", "category": "Section", "brand": "Maker"}
    summary = import_csv(factory, path, mapping)
    assert (summary.imported, summary.errors) == (2, [])
    with factory() as s:
        skus = sorted(p.sku for p in s.scalars(select(Product)))
        assert skus == ["csv-supplier-feed-2", "csv-supplier-feed-3"]
        assert distinct_values(s, "colour") == ["black"]
    assert import_csv(factory, path, mapping).updated == 2


def test_csv_mapping_errors_name_the_valid_options(tmp_path: Path, factory) -> None:
    path = tmp_path / "x.csv"
    path.write_text("name,cost,category\nLamp,3,Home > Lamps\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"Unknown field\(s\) 'colour_name'.*valid fields"):
        import_csv(factory, path, {"title": "name", "price": "cost", "colour_name": "c"})
    with pytest.raises(ValueError, match="valid fields are: " + ", ".join(CSV_FIELDS[:3])):
        import_csv(factory, path, {"nope": "name"})
    with pytest.raises(ValueError, match=r"required field 'title'.*columns are: name, cost"):
        import_csv(factory, path)
    with pytest.raises(ValueError, match=r"required field 'price'"):
        import_csv(factory, path, {"title": "name"})
    with pytest.raises(ValueError, match=r"Column 'Cost' \(mapped to field 'price'\) is not in"):
        import_csv(factory, path, {"title": "name", "price": "Cost"})
    assert _count(factory, Product) == 0
