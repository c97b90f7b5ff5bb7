"""Demographic and geographic segments: transparent rules over the profile's fields.

The rules are deliberately simple and stated, so that a marketer can read why a customer is
where they are; the learned (behavioural) segments live in :mod:`tailor.profiles.rfm`.
"""

from __future__ import annotations

from datetime import date

#: Age band → life stage.
LIFE_STAGES: dict[str, str] = {
    "18-24": "students & young adults",
    "25-34": "young professionals",
    "35-44": "established families",
    "45-54": "established families",
    "55-64": "empty nesters",
    "65+": "retirees",
}
UNKNOWN_AGE = "age not given"

#: Country → (market, hemisphere).
MARKETS: dict[str, tuple[str, str]] = {
    "United States": ("North America", "north"),
    "Canada": ("North America", "north"),
    "United Kingdom": ("Europe", "north"),
    "Ireland": ("Europe", "north"),
    "Germany": ("Europe", "north"),
    "France": ("Europe", "north"),
    "Spain": ("Europe", "north"),
    "Italy": ("Europe", "north"),
    "Netherlands": ("Europe", "north"),
    "Sweden": ("Europe", "north"),
    "Japan": ("Asia", "north"),
    "Australia": ("Oceania", "south"),
    "New Zealand": ("Oceania", "south"),
    "Brazil": ("South America", "south"),
    "South Africa": ("Africa", "south"),
}
CLIMATES: tuple[str, ...] = ("hot", "warm", "temperate", "rainy", "cold")


def demographic_segment(age_band: str | None) -> str:
    """Life stage from the age band (gender is stored but deliberately not used to segment)."""
    return LIFE_STAGES.get((age_band or "").strip(), UNKNOWN_AGE)


def geographic_segment(country: str | None, climate: str | None) -> str:
    """``"<climate> climate · <market>"``, e.g. ``"cold climate · North America"``."""
    market = MARKETS.get((country or "").strip(), ("other markets", "north"))[0]
    zone = (climate or "").strip().lower()
    if zone not in CLIMATES:
        zone = "unknown"
    return f"{zone} climate · {market}"


def season(country: str | None, on: date) -> str:
    """Meteorological season where the customer lives (southern hemisphere flipped)."""
    hemisphere = MARKETS.get((country or "").strip(), ("", "north"))[1]
    names = ("winter", "spring", "summer", "autumn")
    index = (on.month % 12) // 3
    if hemisphere == "south":
        index = (index + 2) % 4
    return names[index]
