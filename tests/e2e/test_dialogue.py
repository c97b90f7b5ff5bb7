"""The Rasa layer checked the way Rasa projects are: validate, test stories, NLU evaluation.

Runs the real ``rasa`` of the 3.10 venv on the deployment's bot copy (its lookup tables
generated from the test catalog) and the model trained for it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tailor.config import PROJECT_ROOT, Settings
from tailor.runtime.rasa import model_path, rasa_env, rasa_executable

pytestmark = [pytest.mark.rasa, pytest.mark.slow]

OUT = PROJECT_ROOT / "test-output"
#: Rasa's validator flags responses only custom actions send; these are expected.
KNOWN_WARNINGS = ("'utter_ask_what'", "'utter_greet'", "'utter_out_of_scope'", "'utter_default'")


def test_the_known_warnings_are_responses_our_actions_send() -> None:
    source = (PROJECT_ROOT / "actions" / "actions.py").read_text(encoding="utf-8")
    for name in KNOWN_WARNINGS:
        assert f'"{name.strip(chr(39))}"' in source, name


def rasa(settings: Settings, *args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(rasa_executable(settings)), *args],
        cwd=settings.bot_dir,
        env=rasa_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_data_validates(built_settings: Settings) -> None:
    res = rasa(
        built_settings,
        "data",
        "validate",
        "--data",
        "data",
        "--domain",
        "domain.yml",
        "--config",
        "config.yml",
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    log = res.stdout + res.stderr
    warnings = [
        line
        for line in log.splitlines()
        if "UserWarning" in line and not any(k in line for k in KNOWN_WARNINGS)
    ]
    assert not warnings, "\n".join(warnings)


def test_stories_pass_with_no_prediction_errors(built_settings: Settings) -> None:
    out = OUT / "rasa-core"
    res = rasa(
        built_settings,
        "test",
        "core",
        "--model",
        str(model_path(built_settings)),
        "--stories",
        "tests/test_stories.yml",
        "--fail-on-prediction-errors",
        "--out",
        str(out),
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]


def test_nlu_cross_validation_accuracy(
    built_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    out = OUT / "rasa-nlu"
    res = rasa(
        built_settings,
        "test",
        "nlu",
        "--nlu",
        "data",
        "--config",
        "config.yml",
        "--cross-validation",
        "--folds",
        "5",
        "--no-plot",
        "--out",
        str(out),
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    report = json.loads(Path(out, "intent_report.json").read_text())
    accuracy = report["accuracy"]
    macro_f1 = report["macro avg"]["f1-score"]
    weakest = sorted(
        (v["f1-score"], k)
        for k, v in report.items()
        if isinstance(v, dict)
        and "support" in v
        and k not in ("macro avg", "weighted avg", "micro avg")
    )[:3]
    with capsys.disabled():
        print(
            f"\nNLU 5-fold cross-validation: intent accuracy {accuracy:.3f}, "
            f"macro F1 {macro_f1:.3f}; "
            f"weakest: {', '.join(f'{k} {f:.2f}' for f, k in weakest)}"
        )
    assert accuracy >= 0.75, f"intent accuracy fell to {accuracy:.3f}"
