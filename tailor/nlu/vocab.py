"""The catalog's vocabulary: brands, colours, materials and categories, and how shoppers
name them ("levis" → "Levi's", "gray" → "grey", "runners" → "Shoes > Running Shoes").

Everything canonicalises to values that exist in the catalog; unknown words give ``None``.
Categories are paths "Top > Leaf"; a product type resolves to a leaf path, or to the top
name for top-level words ("shoes" → "Shoes") when no leaf is named.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = [
    "CATEGORY_ALIASES",
    "COLOUR_ALIASES",
    "GENERIC_HEADS",
    "MATERIAL_ALIASES",
    "Vocabulary",
    "leaf_name",
    "plural_variants",
    "singular",
]

#: How shoppers name colours → catalog colours to try, in order of preference.
COLOUR_ALIASES: dict[str, tuple[str, ...]] = {
    "gray": ("grey", "gray"),
    "grey": ("grey", "gray"),
    "dark grey": ("charcoal", "dark grey", "grey", "gray"),
    "dark gray": ("charcoal", "dark grey", "grey", "gray"),
    "light grey": ("light grey", "grey", "gray"),
    "light gray": ("light grey", "grey", "gray"),
    "charcoal": ("charcoal", "grey", "gray"),
    "silver": ("silver", "grey", "gray"),
    "navy": ("navy", "blue"),
    "navy blue": ("navy", "blue"),
    "dark blue": ("navy", "blue"),
    "royal blue": ("blue",),
    "light blue": ("light blue", "blue"),
    "sky blue": ("light blue", "blue"),
    "baby blue": ("light blue", "blue"),
    "teal": ("teal", "green", "blue"),
    "turquoise": ("turquoise", "teal", "blue"),
    "burgundy": ("burgundy", "maroon", "red"),
    "maroon": ("maroon", "burgundy", "red"),
    "wine": ("burgundy", "maroon", "red"),
    "crimson": ("red",),
    "scarlet": ("red",),
    "olive": ("olive", "khaki", "green"),
    "khaki": ("khaki", "beige", "olive", "green"),
    "forest green": ("green",),
    "dark green": ("green",),
    "lime": ("lime", "green"),
    "mint": ("mint", "green"),
    "beige": ("beige", "cream", "tan"),
    "tan": ("tan", "beige", "brown"),
    "camel": ("camel", "tan", "beige", "brown"),
    "cream": ("cream", "beige", "white"),
    "ivory": ("ivory", "cream", "white"),
    "off white": ("off-white", "cream", "white"),
    "off-white": ("off-white", "cream", "white"),
    "violet": ("purple",),
    "lilac": ("lilac", "lavender", "purple"),
    "lavender": ("lavender", "lilac", "purple"),
    "magenta": ("pink", "purple"),
    "rose": ("pink",),
    "gold": ("gold", "yellow"),
    "golden": ("gold", "yellow"),
    "mustard": ("mustard", "yellow"),
    "chocolate": ("brown",),
    "multicolour": ("multicolour", "multicolor", "multi"),
    "multicolor": ("multicolour", "multicolor", "multi"),
    "multi-colour": ("multicolour", "multicolor", "multi"),
    "multi-color": ("multicolour", "multicolor", "multi"),
}

#: How shoppers name materials → catalog materials to try, in order of preference.
MATERIAL_ALIASES: dict[str, tuple[str, ...]] = {
    "aluminum": ("aluminium", "aluminum"),
    "aluminium": ("aluminium", "aluminum"),
    "faux leather": ("faux leather", "synthetic leather", "vegan leather", "synthetic"),
    "vegan leather": ("vegan leather", "faux leather", "synthetic leather", "synthetic"),
    "pleather": ("faux leather", "synthetic leather", "synthetic"),
    "synthetic leather": ("synthetic leather", "faux leather", "synthetic"),
    "suede": ("suede", "leather"),
    "nubuck": ("nubuck", "leather"),
    "merino": ("merino wool", "merino", "wool"),
    "merino wool": ("merino wool", "merino", "wool"),
    "cashmere": ("cashmere", "wool"),
    "woolen": ("wool",),
    "woollen": ("wool",),
    "jean": ("denim",),
    "wooden": ("wood",),
    "oak": ("oak", "wood"),
    "walnut": ("walnut", "wood"),
    "pine": ("pine", "wood"),
    "bamboo": ("bamboo", "wood"),
    "stainless": ("stainless steel", "steel"),
    "stainless steel": ("stainless steel", "steel"),
    "steel": ("steel", "stainless steel"),
    "poly": ("polyester",),
    "polyester": ("polyester",),
    "gore-tex": ("gore-tex", "goretex"),
    "goretex": ("gore-tex", "goretex"),
    "knit": ("knit", "mesh"),
    "down": ("down",),
    "feather": ("down",),
    "rubber": ("rubber",),
    "plastic": ("plastic",),
    "fleece": ("fleece",),
    "canvas": ("canvas",),
    "linen": ("linen",),
    "silk": ("silk",),
    "nylon": ("nylon",),
}

#: Last words of category names that say too little alone to stand for the category
#: ("Building Sets", "Phone Cases", "Coffee Machines", "Sleeping Bags", "Garden Tools"):
#: shoppers use them for many kinds of products, so they are never aliases by themselves.
GENERIC_HEADS = frozenset(
    """accessory accessories bag bank bed bottle bowl car case cover game gun holder kit
    light lighting machine monitor organizer organiser pack seat set stand storage
    system table tool tree""".split()  # noqa: SIM905
)

#: How shoppers name product types → category names (leaf or top) to try, in order.
CATEGORY_ALIASES: dict[str, tuple[str, ...]] = {
    "sneaker": ("Sneakers", "Trainers", "Running Shoes", "Shoes"),
    "sneakers": ("Sneakers", "Trainers", "Running Shoes", "Shoes"),
    "trainer": ("Trainers", "Sneakers", "Running Shoes"),
    "trainers": ("Trainers", "Sneakers", "Running Shoes"),
    "runners": ("Running Shoes",),
    "running trainers": ("Running Shoes",),
    "running sneakers": ("Running Shoes",),
    "jogging shoes": ("Running Shoes",),
    "kicks": ("Sneakers", "Shoes"),
    "footwear": ("Shoes", "Footwear"),
    "hikers": ("Hiking Boots", "Hiking Shoes"),
    "hiking shoes": ("Hiking Shoes", "Hiking Boots"),
    "walking boots": ("Hiking Boots", "Boots"),
    "tee": ("T-Shirts", "Tees"),
    "tees": ("T-Shirts", "Tees"),
    "tshirt": ("T-Shirts",),
    "tshirts": ("T-Shirts",),
    "t shirt": ("T-Shirts",),
    "t shirts": ("T-Shirts",),
    "hoody": ("Hoodies", "Sweatshirts"),
    "hoodie": ("Hoodies", "Sweatshirts"),
    "hoodies": ("Hoodies", "Sweatshirts"),
    "sweatshirt": ("Sweatshirts", "Hoodies"),
    "sweater": ("Sweaters", "Jumpers", "Knitwear"),
    "sweaters": ("Sweaters", "Jumpers", "Knitwear"),
    "jumper": ("Jumpers", "Sweaters", "Knitwear"),
    "jumpers": ("Jumpers", "Sweaters", "Knitwear"),
    "pullover": ("Sweaters", "Jumpers", "Hoodies"),
    "coat": ("Coats", "Jackets"),
    "coats": ("Coats", "Jackets"),
    "parka": ("Parkas", "Coats", "Jackets"),
    "raincoat": ("Rain Jackets", "Raincoats", "Jackets"),
    "rain jacket": ("Rain Jackets", "Raincoats", "Jackets"),
    "puffer": ("Down Jackets", "Jackets", "Coats"),
    "pants": ("Pants", "Trousers"),
    "trousers": ("Trousers", "Pants"),
    "joggers": ("Joggers", "Sweatpants", "Pants"),
    "sweatpants": ("Sweatpants", "Joggers", "Pants"),
    "laptop": ("Laptops", "Notebooks"),
    "laptops": ("Laptops", "Notebooks"),
    "notebook computer": ("Laptops", "Notebooks"),
    "computer": ("Laptops", "Computers", "Desktops"),
    "headphone": ("Headphones",),
    "headset": ("Headphones", "Headsets"),
    "headsets": ("Headphones", "Headsets"),
    "earphones": ("Earbuds", "Headphones"),
    "earbuds": ("Earbuds", "Headphones"),
    "earbud": ("Earbuds", "Headphones"),
    "ear buds": ("Earbuds", "Headphones"),
    "in-ear headphones": ("Earbuds", "Headphones"),
    "couch": ("Sofas", "Couches"),
    "couches": ("Sofas", "Couches"),
    "settee": ("Sofas",),
    # compound names whose last word is generic (GENERIC_HEADS): said in full, they name
    # one kind of product
    "espresso machine": ("Coffee Machines", "Espresso Machines"),
    "espresso machines": ("Coffee Machines", "Espresso Machines"),
    "rc car": ("Remote Control Cars",),
    "rc cars": ("Remote Control Cars",),
    "dog bowl": ("Pet Bowls",),
    "dog bowls": ("Pet Bowls",),
    "cat bowl": ("Pet Bowls",),
    "cat bowls": ("Pet Bowls",),
    "lego set": ("Building Sets",),
    "lego sets": ("Building Sets",),
    "games console": ("Consoles",),
    "game console": ("Consoles",),
    "duvet": ("Bedding", "Duvets"),
    "duvets": ("Bedding", "Duvets"),
    "duvet cover": ("Bedding", "Duvet Covers"),
    "duvet covers": ("Bedding", "Duvet Covers"),
    "duvet cover set": ("Bedding", "Duvet Covers"),
    "duvet cover sets": ("Bedding", "Duvet Covers"),
    "bed linen": ("Bedding",),
    "bed sheets": ("Bedding",),
    "sheets": ("Bedding",),
    "tv": ("TVs", "Televisions"),
    "tvs": ("TVs", "Televisions"),
    "television": ("TVs", "Televisions"),
    "telly": ("TVs", "Televisions"),
    "phone": ("Smartphones", "Phones", "Mobile Phones"),
    "phones": ("Smartphones", "Phones", "Mobile Phones"),
    "mobile": ("Smartphones", "Mobile Phones", "Phones"),
    "mobile phone": ("Smartphones", "Mobile Phones", "Phones"),
    "cell phone": ("Smartphones", "Mobile Phones", "Phones"),
    "cellphone": ("Smartphones", "Mobile Phones", "Phones"),
    "smartwatch": ("Smartwatches", "Watches"),
    "smart watch": ("Smartwatches", "Watches"),
    "watch": ("Watches", "Smartwatches"),
    "speaker": ("Speakers",),
    "bluetooth speaker": ("Speakers",),
    "rucksack": ("Backpacks", "Bags"),
    "rucksacks": ("Backpacks", "Bags"),
    "daypack": ("Backpacks",),
    "bag": ("Bags", "Backpacks"),
    "ipad": ("Tablets",),
    "tablet": ("Tablets",),
    "bookcase": ("Bookcases", "Shelves", "Shelving"),
    "bookshelf": ("Bookcases", "Shelves", "Shelving"),
    "shelf": ("Shelves", "Shelving", "Bookcases"),
    "office chair": ("Office Chairs", "Chairs"),
    "desk chair": ("Office Chairs", "Chairs"),
    "coffee maker": ("Coffee Machines", "Coffee Makers"),
    "coffee machine": ("Coffee Machines", "Coffee Makers"),
    "frying pan": ("Pans", "Cookware"),
    "skillet": ("Pans", "Cookware"),
    "pots and pans": ("Cookware",),
}

# Words that are plural in form but have no sensible singular of their own.
_PLURALIA = frozenset(
    {
        "jeans",
        "shorts",
        "pants",
        "trousers",
        "leggings",
        "tights",
        "glasses",
        "sunglasses",
        "goggles",
        "scissors",
        "pajamas",
        "pyjamas",
        "overalls",
        "briefs",
        "boxers",
        "sweatpants",
        "joggers",
        "chinos",
        "electronics",
        "accessories",
        "clothes",
        "sportswear",
        "outdoors",
        "goods",
        "supplies",
        "headphones",
    }
)
_UNCOUNTABLE = frozenset(
    {"clothing", "furniture", "audio", "footwear", "outerwear", "knitwear", "cookware", "gear"}
)


def _norm(value: str) -> str:
    """Lower-case, NFKC, curly apostrophes straightened, spaces collapsed."""
    value = unicodedata.normalize("NFKC", value).replace("\u2019", "'").replace("`", "'")
    return re.sub(r"\s+", " ", value).strip().lower()


def _key(value: str) -> str:
    """A loose key: letters and digits only ("Levi's" → "levis", "New-Balance" → "newbalance")."""
    return re.sub(r"[^0-9a-z]+", "", _norm(value))


def singular(word: str) -> str:
    """The singular of the last word of a phrase ("running shoes" → "running shoe")."""
    head, _, last = word.rpartition(" ")
    lw = last.lower()
    if lw in _PLURALIA or lw in _UNCOUNTABLE or len(lw) < 4 or not lw.endswith("s"):
        return word
    if lw.endswith("ies") and len(lw) > 4:
        last = last[:-3] + "y"
    elif lw.endswith(("sses", "shes", "ches", "xes", "zes")):
        last = last[:-2]
    elif lw.endswith("ss") or lw.endswith("us"):
        return word
    else:
        last = last[:-1]
    return f"{head} {last}" if head else last


def _plural(word: str) -> str:
    head, _, last = word.rpartition(" ")
    lw = last.lower()
    if lw in _UNCOUNTABLE or lw.endswith("s"):
        return word
    if lw.endswith("y") and len(lw) > 2 and lw[-2] not in "aeiou":
        last = last[:-1] + "ies"
    elif lw.endswith(("s", "sh", "ch", "x", "z")):
        last = last + "es"
    else:
        last = last + "s"
    return f"{head} {last}" if head else last


def plural_variants(name: str) -> set[str]:
    """Lower-case spellings of a category name: as is, singular/plural, hyphen/space forms.

    "T-Shirts" → {"t-shirts", "t-shirt", "t shirts", "t shirt", "tshirts", "tshirt"}.
    "Home & Kitchen" also gives "home and kitchen".
    """
    base = _norm(name)
    forms = {base, singular(base), _plural(base)}
    more: set[str] = set()
    for f in forms:
        if "-" in f:
            more.add(f.replace("-", " "))
            more.add(f.replace("-", ""))
        if "&" in f:
            more.add(re.sub(r"\s*&\s*", " and ", f))
    return {re.sub(r"\s+", " ", f).strip() for f in forms | more if f.strip()}


@dataclass(frozen=True)
class Vocabulary:
    """Brands, colours, materials and category paths of the catalog, with canonicalisers.

    Build it from a database session with :meth:`from_session`, or directly (in tests):
    ``Vocabulary(brands=["Nike"], colours=["blue"], materials=["mesh"],
    categories=["Shoes > Running Shoes"])``. ``brand_categories`` (brand, category path)
    pairs say which kinds of products each brand makes (:meth:`brand_category`).
    """

    brands: tuple[str, ...] = ()
    colours: tuple[str, ...] = ()
    materials: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    brand_categories: tuple[tuple[str, str], ...] = ()
    _brand_index: dict[str, str] = field(init=False, repr=False, compare=False)
    #: (brand, singular last word of a leaf) -> the brand's category paths ending so
    _brand_heads: dict[tuple[str, str], set[str]] = field(init=False, repr=False, compare=False)
    _colour_index: dict[str, str] = field(init=False, repr=False, compare=False)
    _material_index: dict[str, str] = field(init=False, repr=False, compare=False)
    _category_index: dict[str, str] = field(init=False, repr=False, compare=False)

    def __init__(
        self,
        brands: Iterable[str] = (),
        colours: Iterable[str] = (),
        materials: Iterable[str] = (),
        categories: Iterable[str] = (),
        brand_categories: Iterable[tuple[str, str]] = (),
    ) -> None:
        set_ = object.__setattr__
        set_(self, "brands", _clean_sorted(brands))
        set_(
            self,
            "brand_categories",
            tuple(sorted({(b, _norm_path(c)) for b, c in brand_categories if b and c})),
        )
        set_(self, "colours", _clean_sorted(c.lower() for c in colours if c))
        set_(self, "materials", _clean_sorted(m.lower() for m in materials if m))
        set_(self, "categories", _clean_sorted(_norm_path(c) for c in categories if c))
        set_(self, "_brand_index", self._build_brand_index())
        set_(
            self,
            "_colour_index",
            _build_attribute_index(self.colours, COLOUR_ALIASES),
        )
        set_(
            self,
            "_material_index",
            _build_attribute_index(self.materials, MATERIAL_ALIASES),
        )
        set_(self, "_category_index", self._build_category_index())
        heads: dict[tuple[str, str], set[str]] = {}
        for brand, path in self.brand_categories:
            last_word = leaf_name(path).rsplit(" ", 1)[-1]
            heads.setdefault((brand, singular(last_word)), set()).add(path)
        set_(self, "_brand_heads", heads)

    # --- construction ---------------------------------------------------------------------

    @classmethod
    def from_session(cls, session: Session) -> Vocabulary:
        """Read the distinct brands, colours, materials and categories of all products."""
        from sqlalchemy import select

        from tailor.store.models import Product

        def column(col: Any) -> list[str]:
            rows = session.execute(select(col).where(col.is_not(None)).distinct())
            return [str(v) for (v,) in rows if v is not None and str(v).strip()]

        pairs = session.execute(
            select(Product.brand, Product.category)
            .where(Product.brand.is_not(None), Product.category.is_not(None))
            .distinct()
        )
        return cls(
            brands=column(Product.brand),
            colours=column(Product.colour),
            materials=column(Product.material),
            categories=column(Product.category),
            brand_categories=[(str(b), str(c)) for b, c in pairs],
        )

    def _build_brand_index(self) -> dict[str, str]:
        index: dict[str, str] = {}
        for brand in self.brands:
            for variant in (brand, re.sub(r"^the\s+", "", brand, flags=re.IGNORECASE)):
                index.setdefault(_key(variant), brand)
        return index

    def _build_category_index(self) -> dict[str, str]:
        index: dict[str, str] = {}
        tops: dict[str, str] = {}
        leaves: dict[str, str] = {}
        for path in self.categories:
            parts = [p.strip() for p in path.split(">")]
            top, leaf = parts[0], parts[-1]
            tops.setdefault(_norm(top), top)
            if len(parts) > 1:
                leaves.setdefault(_norm(leaf), path)  # first in sorted order wins
            index.setdefault(_norm(path), path)
        # Leaves win over tops of the same name ("Shoes > Shoes" is unlikely but possible).
        for name, top in sorted(tops.items()):
            for form in plural_variants(name):
                if form == name or form == singular(name):  # "shoes"/"shoe", not "homes"
                    index.setdefault(form, top)
        for name, path in sorted(leaves.items()):
            for form in plural_variants(name):
                index[form] = path
        # A leaf's last word alone ("boots" for "Hiking Boots") when only one leaf ends so
        # and the word names a kind of product by itself: "set" of "Building Sets" would
        # send "a duvet cover set" to the toys.
        tails: dict[str, set[str]] = {}
        for name, path in leaves.items():
            last = name.rsplit(" ", 1)[1] if " " in name else None
            if last is not None and singular(last) not in GENERIC_HEADS:
                for form in plural_variants(last):
                    tails.setdefault(form, set()).add(path)
        for form, paths in sorted(tails.items()):
            if len(paths) == 1 and form not in index:
                index[form] = next(iter(paths))
        for alias, targets in sorted(CATEGORY_ALIASES.items()):
            alias_key = _norm(alias)
            if alias_key in index:
                continue
            for target in targets:
                t = _norm(target)
                if t in leaves:
                    index[alias_key] = leaves[t]
                    break
                if t in tops:
                    index[alias_key] = tops[t]
                    break
        return index

    # --- canonicalisation -----------------------------------------------------------------

    def brand(self, value: str | None) -> str | None:
        """The catalog brand for ``value`` (case and punctuation ignored: "levis" → "Levi's",
        "north face" → "The North Face"), or ``None``."""
        if not value:
            return None
        return self._brand_index.get(_key(value)) or self._brand_index.get(
            _key(re.sub(r"^the\s+", "", _norm(value)))
        )

    def colour(self, value: str | None) -> str | None:
        """The catalog colour for ``value`` ("Gray" → "grey" when the catalog says grey,
        "navy blue" → "navy"), or ``None``."""
        return _lookup_attribute(self._colour_index, value, suffixes=("ish", "s"))

    def material(self, value: str | None) -> str | None:
        """The catalog material for ``value`` ("aluminum" → "aluminium"), or ``None``."""
        return _lookup_attribute(self._material_index, value, suffixes=("s",))

    def category_for(self, product_type: str | None) -> str | None:
        """The category path a product type names, or ``None``.

        "running shoes", "running shoe" and "runners" → "Shoes > Running Shoes"; a top-level
        name such as "shoes" → "Shoes"; "trail running shoes" falls back to the longest known
        ending ("running shoes"). Only categories present in the catalog are returned.
        """
        if not product_type:
            return None
        text = _norm(product_type).strip(" .,!?;:'\"")
        text = re.sub(r"^(?:a|an|the|some|any|new|pair of|pairs of)\s+", "", text)
        words = text.split()
        for i in range(len(words)):
            candidate = " ".join(words[i:])
            for form in (candidate, singular(candidate)):
                if form in self._category_index:
                    return self._category_index[form]
        return None

    def brand_category(self, brand: str | None, word: str) -> str | None:
        """The one category of ``brand`` whose name ends in ``word`` ("Nespresso", "machine"
        → "Kitchen > Coffee Machines"; "Samsung", "case" → "Phones > Phone Cases"), or
        ``None`` when the brand makes no such product or more than one kind ends so.

        For a brand followed by a word too generic to name a category alone
        (:data:`GENERIC_HEADS`): the brand says which kind is meant.
        """
        canonical = self.brand(brand)
        if canonical is None or not word:
            return None
        paths = self._brand_heads.get((canonical, singular(_norm(word))), set())
        return next(iter(paths)) if len(paths) == 1 else None

    # --- phrases for lookup tables ----------------------------------------------------------

    def product_type_phrases(self) -> list[str]:
        """Every lower-case phrase that :meth:`category_for` resolves (sorted)."""
        return sorted(p for p in self._category_index if ">" not in p)

    def brand_phrases(self) -> list[str]:
        """Brand names and loose spellings ("levis", "north face"), sorted."""
        phrases: set[str] = set()
        for brand in self.brands:
            phrases.add(brand)
            stripped = re.sub(r"^the\s+", "", brand, flags=re.IGNORECASE)
            phrases.add(stripped)
            loose = re.sub(r"[^\w\s&-]+", "", stripped)
            if loose.strip():
                phrases.add(re.sub(r"\s+", " ", loose).strip())
        return sorted(phrases, key=str.lower)

    def colour_phrases(self) -> dict[str, str]:
        """Colour words (catalog colours and aliases) → catalog colour, sorted by word."""
        return dict(sorted(self._colour_index.items()))

    def material_phrases(self) -> dict[str, str]:
        """Material words (catalog materials and aliases) → catalog material, sorted."""
        return dict(sorted(self._material_index.items()))


def _clean_sorted(values: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for v in values:
        if v is None:
            continue
        s = re.sub(r"\s+", " ", str(v)).strip()
        if s:
            seen.setdefault(s.lower(), s)
    return tuple(sorted(seen.values(), key=lambda s: (s.lower(), s)))


def leaf_name(path: str) -> str:
    """The last level of a category path, lower-case ("Kitchen > Coffee Machines" →
    "coffee machines")."""
    return path.rsplit(">", 1)[-1].strip().lower()


def _norm_path(path: str) -> str:
    return " > ".join(p.strip() for p in str(path).split(">"))


def _build_attribute_index(
    canonical: Iterable[str], aliases: Mapping[str, tuple[str, ...]]
) -> dict[str, str]:
    existing = {_norm(c): c for c in canonical}
    index = dict(existing)
    for name, value in existing.items():
        if "-" in name:
            index.setdefault(name.replace("-", " "), value)
    for alias, targets in aliases.items():
        key = _norm(alias)
        if key in existing:
            continue
        for target in targets:
            if _norm(target) in existing:
                index[key] = existing[_norm(target)]
                break
    return index


def _lookup_attribute(
    index: Mapping[str, str], value: str | None, suffixes: tuple[str, ...]
) -> str | None:
    if not value:
        return None
    key = _norm(value).strip(" .,!?;:'\"")
    if key in index:
        return index[key]
    for suffix in suffixes:
        if key.endswith(suffix) and key[: -len(suffix)] in index:
            return index[key[: -len(suffix)]]
    return None
