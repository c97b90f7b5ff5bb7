"""Intent and entity quality of the Rasa NLU pipeline by k-fold cross-validation on the
project's hand-written NLU data (``bot/data/nlu.yml``, ``bot/data/out_of_scope.yml``),
with the catalog's lookup tables and synonyms as features.

The catalog-generated request examples are left out of the folds: they come from a
template, so they would make the held-out folds easy. Runs ``rasa test nlu
--cross-validation`` in the Rasa venv and reads the reports it writes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tailor.config import Settings

__all__ = ["NluReport", "prepare_cv_data", "read_reports", "run_cross_validation"]


@dataclass
class NluReport:
    """Cross-validated intent and entity scores."""

    folds: int
    intents: dict[str, dict[str, float]]  # intent → precision, recall, f1-score, support
    intent_accuracy: float
    intent_macro_f1: float
    entities: dict[str, dict[str, float]] = field(default_factory=dict)
    entity_macro_f1: float | None = None
    confusion: tuple[list[str], list[list[int]]] | None = None
    out_dir: Path | None = None
    seconds: float = 0.0

    def markdown(self) -> str:
        """Intent and entity tables."""
        lines = [
            f"Intent classification, {self.folds}-fold cross-validation: accuracy "
            f"**{self.intent_accuracy:.3f}**, macro-F1 **{self.intent_macro_f1:.3f}**.",
            "",
            "| intent | precision | recall | F1 | examples |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for name, s in sorted(self.intents.items()):
            lines.append(
                f"| {name} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1-score']:.3f} "
                f"| {int(s['support'])} |"
            )
        if self.entities:
            lines += [
                "",
                f"Entities (RegexEntityExtractor with the catalog lookups), macro-F1 "
                f"**{(self.entity_macro_f1 or 0.0):.3f}**:",
                "",
                "| entity | precision | recall | F1 | annotated |",
                "| --- | ---: | ---: | ---: | ---: |",
            ]
            for name, s in sorted(self.entities.items()):
                lines.append(
                    f"| {name} | {s['precision']:.3f} | {s['recall']:.3f} "
                    f"| {s['f1-score']:.3f} | {int(s['support'])} |"
                )
        return "\n".join(lines)


def prepare_cv_data(bot_dir: Path, out: Path) -> Path:
    """A data folder for cross-validation: the hand-written NLU files, plus the generated
    lookup tables and synonyms without the generated request examples."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    data = Path(bot_dir) / "data"
    for name in ("nlu.yml", "out_of_scope.yml"):
        if (data / name).is_file():
            shutil.copyfile(data / name, out / name)
    generated = data / "generated" / "lookups.yml"
    if generated.is_file():
        doc = yaml.safe_load(generated.read_text(encoding="utf-8"))
        doc["nlu"] = [item for item in doc.get("nlu") or [] if "intent" not in item]
        (out / "lookups.yml").write_text(
            yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8"
        )
    return out


def _scores(report: dict[str, Any]) -> dict[str, dict[str, float]]:
    skip = {"accuracy", "macro avg", "weighted avg", "micro avg", "no_entity"}
    return {
        k: {m: float(v.get(m, 0.0)) for m in ("precision", "recall", "f1-score", "support")}
        for k, v in report.items()
        if k not in skip and isinstance(v, dict)
    }


def read_reports(out_dir: Path, folds: int) -> NluReport:
    """Read the ``intent_report.json`` and entity report Rasa wrote into ``out_dir``."""
    intent = json.loads((out_dir / "intent_report.json").read_text(encoding="utf-8"))
    intents = _scores(intent)
    accuracy = float(intent.get("accuracy", intent.get("micro avg", {}).get("f1-score", 0.0)))
    macro = float(intent["macro avg"]["f1-score"])
    entities: dict[str, dict[str, float]] = {}
    entity_macro: float | None = None
    for path in sorted(out_dir.glob("*Extractor_report.json")):
        rep = json.loads(path.read_text(encoding="utf-8"))
        entities = _scores(rep)
        if "macro avg" in rep:
            entity_macro = float(rep["macro avg"]["f1-score"])
        break
    confusion = None
    errors = out_dir / "intent_errors.json"
    if errors.is_file():
        confusion = _confusion_from(out_dir, intents)
    return NluReport(
        folds=folds,
        intents=intents,
        intent_accuracy=accuracy,
        intent_macro_f1=macro,
        entities=entities,
        entity_macro_f1=entity_macro,
        confusion=confusion,
        out_dir=out_dir,
    )


def _confusion_from(
    out_dir: Path, intents: dict[str, dict[str, float]]
) -> tuple[list[str], list[list[int]]]:
    """Rebuild the confusion matrix from the per-intent supports and Rasa's error list
    (each error names the gold intent and the prediction)."""
    labels = sorted(intents)
    index = {name: i for i, name in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    errors = json.loads((out_dir / "intent_errors.json").read_text(encoding="utf-8"))
    wrong = [0] * len(labels)
    for err in errors:
        gold = err.get("intent")
        pred = (err.get("intent_prediction") or {}).get("name")
        if gold in index and pred in index:
            matrix[index[gold]][index[pred]] += 1
            wrong[index[gold]] += 1
        elif gold in index:
            wrong[index[gold]] += 1
    for name, i in index.items():
        matrix[i][i] = int(intents[name]["support"]) - wrong[i]
    return labels, matrix


def run_cross_validation(
    settings: Settings,
    out_dir: Path,
    folds: int = 5,
    echo: Callable[[str], None] | None = None,
) -> NluReport:
    """Cross-validate the pipeline of ``bot/config.yml`` and return the scores; Rasa's
    reports and plots stay in ``out_dir``."""
    from tailor.runtime.rasa import rasa_env, rasa_executable

    say = echo or (lambda _line: None)
    bot_dir = Path(settings.bot_dir)
    work = Path(settings.home) / "eval" / "nlu-cv-data"
    data = prepare_cv_data(bot_dir, work)
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(rasa_executable(settings)),
        "test",
        "nlu",
        "--nlu",
        str(data),
        "--config",
        str(bot_dir / "config.yml"),
        "--cross-validation",
        "--folds",
        str(folds),
        "--out",
        str(out_dir),
        "--no-plot",
    ]
    started = time.monotonic()
    say(f"Cross-validating the NLU pipeline ({folds} folds)…")
    proc = subprocess.run(
        cmd, cwd=bot_dir, env=rasa_env(), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0 or not (out_dir / "intent_report.json").is_file():
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-25:])
        raise RuntimeError(f"rasa test nlu failed (exit {proc.returncode}):\n{tail}")
    report = read_reports(out_dir, folds)
    report.seconds = time.monotonic() - started
    say(f"  done in {report.seconds:.0f} s")
    return report
