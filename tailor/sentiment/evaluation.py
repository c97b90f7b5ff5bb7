"""Accuracy of a :class:`~tailor.sentiment.SentimentModel` on labelled rows."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tailor.sentiment.data import Row, load_shopping, load_sst2, load_uci
from tailor.sentiment.model import SentimentModel


def load_rows(path: str | Path) -> list[Row]:
    """Rows from an SST-2 folder (its ``dev.tsv``), a UCI folder, or one file: binary
    (``text<TAB>0|1``, SST-2 or UCI) or 3-class (``text<TAB>negative|neutral|positive``)."""
    p = Path(path)
    if p.is_dir():
        return load_sst2(p, "dev") if (p / "dev.tsv").is_file() else load_uci(p)
    rows = load_uci(p)  # any binary text<TAB>0|1 file, header or not
    return rows if rows else load_shopping(p)


def evaluate(
    model: SentimentModel, path_or_rows: str | Path | Sequence[Row], binary: bool | None = None
) -> float:
    """Accuracy on ``path_or_rows``.

    With ``binary`` (the default when the gold labels are only negative/positive, as in
    SST-2 and UCI) a row counts as positive when ``p(positive) > p(negative)``; otherwise
    the arg-max over all classes must equal the gold label (3-class accuracy).
    """
    if isinstance(path_or_rows, (str, Path)):  # noqa: SIM108 - keeps mypy's narrowing
        rows = load_rows(path_or_rows)
    else:
        rows = list(path_or_rows)
    if not rows:
        raise ValueError("no rows to evaluate")
    if binary is None:
        binary = {label for _, label in rows} <= {"negative", "positive"}
    probs = model.predict_proba([text for text, _ in rows])
    labels = model.labels
    if binary:
        pos, neg = labels.index("positive"), labels.index("negative")
        predicted = ["positive" if p[pos] > p[neg] else "negative" for p in probs]
    else:
        predicted = [labels[int(i)] for i in probs.argmax(axis=1)]
    correct = sum(p == gold for p, (_, gold) in zip(predicted, rows, strict=True))
    return correct / len(rows)
