"""The pure parts of ``tailor bench soak``: memory trend, answer checks, report, CLI wiring."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tailor.bench.soak import (
    FALLBACK_PREFIX,
    SOAK_BEGIN,
    SOAK_END,
    SoakResult,
    answer_error,
    memory_trend,
    report_lines,
    write_report,
)
from tailor.bench.turns import Turn
from tailor.cli import build_parser, main
from tailor.config import PROJECT_ROOT


def test_memory_trend_recovers_a_linear_slope_and_the_end_windows() -> None:
    samples = [(t * 5.0, 300.0 + 0.5 * t * 5.0 / 60) for t in range(100)]  # +0.5 MiB/min
    trend = memory_trend(samples)
    assert trend.slope_mb_per_min == pytest.approx(0.5)
    first = sum(m for _, m in samples[:10]) / 10
    last = sum(m for _, m in samples[-10:]) / 10
    assert trend.first_mb == pytest.approx(first)
    assert trend.last_mb == pytest.approx(last)
    assert trend.growth_mb == pytest.approx(last - first)
    assert trend.peak_mb == samples[-1][1]


def test_memory_trend_of_a_plateau_is_flat_after_warm_up() -> None:
    samples = [(float(t), 200.0 if t < 5 else 400.0) for t in range(200)]
    trend = memory_trend(samples)
    assert trend.last_mb == 400.0
    assert trend.first_mb == pytest.approx(200 * 5 / 20 + 400 * 15 / 20)
    assert 0 < trend.slope_mb_per_min < 60  # the step, spread over the run


def test_memory_trend_rejects_too_few_samples_and_bad_shares() -> None:
    with pytest.raises(ValueError, match="at least 2 memory samples"):
        memory_trend([(0.0, 1.0)])
    with pytest.raises(ValueError, match=re.escape("share must be within (0, 0.5]")):
        memory_trend([(0.0, 1.0), (1.0, 1.0)], share=0.9)


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (200, {"messages": [{"text": "Here are three running shoes"}]}, ""),
        (200, {"messages": [{"custom": {"type": "product_cards"}}]}, ""),
        (200, {"messages": []}, "empty answer"),
        (200, None, "empty answer"),
        (200, {"messages": [{"text": f"{FALLBACK_PREFIX} — please try again"}]}, "fallback answer"),
        (503, None, "HTTP 503"),
    ],
)
def test_answer_error(status: int, body: object, error: str) -> None:
    assert answer_error(status, body) == error


def test_fallback_prefix_matches_the_channel_text() -> None:
    channels = (PROJECT_ROOT / "bot" / "tailor_channels.py").read_text(encoding="utf-8")
    assert f'"{FALLBACK_PREFIX} — please try again in a moment."' in channels


def _result(sent: int, failed: int, tracker: int, logged: int) -> SoakResult:
    result = SoakResult(minutes=1.0, shoppers=2, run_id="abc", started="now", seconds=70.0)
    result.turns = [
        Turn(i, 0, 100.0 + i, i >= failed, "" if i >= failed else "HTTP 503") for i in range(sent)
    ]
    result.conversations = 3
    result.memory = {"web app": [(float(t), 100.0) for t in range(20)]}
    result.tracker_user_events = tracker
    result.logged_message_events = logged
    return result


def test_verdicts_need_no_errors_and_every_message_stored() -> None:
    good = _result(sent=10, failed=0, tracker=10, logged=10).verdicts()
    assert good[0].endswith("met") and good[1].endswith("met")
    assert "slope +0.00 MiB/min" in good[2]
    lost = _result(sent=10, failed=0, tracker=10, logged=9).verdicts()
    assert lost[1].endswith("MISSED")
    failing = _result(sent=10, failed=2, tracker=10, logged=10).verdicts()
    assert failing[0] == "errors: 2 of 10 messages — MISSED"


def test_report_is_written_between_markers_and_replaced(tmp_path: Path) -> None:
    doc = tmp_path / "reliability.md"
    doc.write_text("# Reliability\n\nHand-written faults section.\n", encoding="utf-8")
    lines = report_lines(_result(10, 1, 10, 10), "tailor bench soak --minutes 1", "a machine")
    write_report(doc, lines)
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# Reliability\n\nHand-written faults section.\n")
    assert "| errors | 1 (HTTP 503: 1) |" in text and "| web app | 100 MiB |" in text
    write_report(doc, ["second run"])
    text = doc.read_text(encoding="utf-8")
    assert text.count(SOAK_BEGIN) == 1 and text.count(SOAK_END) == 1
    assert "second run" in text and "HTTP 503" not in text
    assert "Hand-written faults section." in text


def test_bench_soak_parses_and_turns_stays_the_default() -> None:
    args = build_parser().parse_args(["bench", "soak", "--minutes", "0.5", "--shoppers", "3"])
    assert (args.what, args.minutes, args.shoppers) == ("soak", 0.5, 3)
    assert build_parser().parse_args(["bench", "--concurrency", "1", "8"]).what == "turns"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bench", "soak", "--minutes", "0"], "--minutes must be within (0, 1440], got 0.0"),
        (["bench", "soak", "--shoppers", "0"], "--shoppers must be >= 1, got 0"),
    ],
)
def test_bench_soak_rejects_bad_bounds(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err
