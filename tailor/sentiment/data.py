"""Sentiment data sets: SST-2, the UCI labelled sentences and our shopping reactions.

Every loader returns a list of ``(text, label)`` rows with labels among
``negative``/``neutral``/``positive``.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from tailor.config import PROJECT_ROOT

Row = tuple[str, str]

#: Our labelled shopping-chat reactions (text<TAB>label), shipped with the package.
SHOPPING_REACTIONS = Path(__file__).resolve().parent / "data" / "shopping_reactions.tsv"
#: Every ``HELDOUT_EVERY``-th data line of the shopping set (1-based) is held out.
HELDOUT_EVERY = 5

_BINARY = {"0": "negative", "1": "positive"}
_UCI_FILES = ("amazon_cells_labelled.txt", "yelp_labelled.txt", "imdb_labelled.txt")


def shared_data_dir() -> Path:
    """``$TAILOR_SHARED_DATA``, or ``<repo>/../shared/data``."""
    return Path(os.environ.get("TAILOR_SHARED_DATA") or PROJECT_ROOT.parent / "shared" / "data")


def _lines(path: Path) -> list[str]:
    # Split on "\n" only: the UCI files contain U+0085 inside sentences, which
    # str.splitlines() would treat as a line break.
    text = path.read_text(encoding="utf-8", errors="replace")
    return [line.rstrip("\r") for line in text.split("\n")]


def _binary_rows(path: Path) -> list[Row]:
    rows: list[Row] = []
    for line in _lines(path):
        text, sep, label = line.rpartition("\t")
        label = label.strip()
        if not sep or label not in _BINARY or not text.strip():
            continue  # header line ("text\tlabel", "sentence\tscore") or blank
        rows.append((text.strip(), _BINARY[label]))
    return rows


def resolve_sst2(path: str | Path, split: str = "train") -> Path:
    """The SST-2 ``<split>.tsv`` for a file, an ``sst2/`` folder or the ``sentiment/`` folder."""
    p = Path(path)
    for candidate in (p, p / f"{split}.tsv", p / "sst2" / f"{split}.tsv"):
        if candidate.is_file():
            if candidate == p and split != "train" and p.name == "train.tsv":
                sibling = p.with_name(f"{split}.tsv")
                if sibling.is_file():
                    return sibling
            return candidate
    raise FileNotFoundError(f"no SST-2 {split}.tsv at {p}")


def load_sst2(path: str | Path, split: str = "train") -> list[Row]:
    """SST-2 rows (``text<TAB>label`` with a header, 1 = positive)."""
    return _binary_rows(resolve_sst2(path, split))


def load_uci(path: str | Path) -> list[Row]:
    """The UCI sentiment-labelled sentences (Amazon, Yelp, IMDB; 3 × 1000 rows).

    ``path`` is the ``uci/`` folder (or the ``sentiment/`` folder holding it) or one file.
    """
    p = Path(path)
    if p.is_file():
        return _binary_rows(p)
    folder = p / "uci" if (p / "uci").is_dir() else p
    files = [folder / name for name in _UCI_FILES if (folder / name).is_file()]
    if not files:
        raise FileNotFoundError(f"no UCI *_labelled.txt files at {p}")
    return [row for f in files for row in _binary_rows(f)]


def load_shopping(path: str | Path | None = None) -> list[Row]:
    """Our shopping-chat reactions, in file order (default: the shipped set)."""
    p = Path(path) if path is not None else SHOPPING_REACTIONS
    rows: list[Row] = []
    for n, line in enumerate(_lines(p), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        text, sep, label = line.rpartition("\t")
        label = label.strip().lower()
        if not sep or (label == "label" and text.strip().lower() == "text"):
            continue
        if label not in ("negative", "neutral", "positive"):
            raise ValueError(f"{p}:{n}: unknown label {label!r}")
        rows.append((text.strip(), label))
    return rows


def split_shopping(rows: list[Row]) -> tuple[list[Row], list[Row]]:
    """Deterministic ``(train, heldout)``: every :data:`HELDOUT_EVERY`-th row is held out."""
    train = [r for i, r in enumerate(rows, start=1) if i % HELDOUT_EVERY]
    heldout = [r for i, r in enumerate(rows, start=1) if not i % HELDOUT_EVERY]
    return train, heldout


def sample(rows: list[Row], limit: int | None, seed: int) -> list[Row]:
    """A seeded random subset of at most ``limit`` rows (all rows, shuffled, if ``None``)."""
    out = list(rows)
    random.Random(seed).shuffle(out)
    return out if limit is None else out[:limit]
