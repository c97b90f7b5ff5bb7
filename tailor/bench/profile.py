"""Where a turn's CPU time goes: py-spy samples of the Rasa server and the action server,
folded into stages (NLU, policies, action call, embedding, search, ranking, database, ...).

``py-spy record --format raw`` writes one line per distinct stack: ``frame;frame;... count``
with frames like ``predict (rasa/core/policies/rule_policy.py:123)``. Each sample is charged
to the first stage whose pattern matches a frame, scanning from the innermost frame out, so a
database call made while ranking counts as database, not ranking.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

#: (stage, substrings of a frame) — checked innermost frame first, first match wins.
RASA_STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("tracker store (SQL)", ("sqlalchemy", "tracker_store.py", "sqlite3")),
    ("action call (HTTP)", ("aiohttp", "rasa/utils/endpoints.py")),
    ("NLU", ("rasa/nlu/", "sklearn", "sklearn_crfsuite", "pycrfsuite", "spacy")),
    ("policies", ("rasa/core/policies/",)),
    ("events & tracker", ("rasa/shared/core/events.py", "rasa/shared/core/trackers.py")),
    ("graph & processor", ("rasa/engine/", "rasa/core/processor.py")),
    ("JSON", ("json/", "ujson", "orjson")),
    ("web server", ("sanic", "rasa/core/channels/", "asyncio/", "uvloop")),
)
ACTION_STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("database", ("sqlalchemy", "sqlite3")),
    ("sentiment", ("tailor/sentiment/",)),
    # ONNX Runtime and tokenizer frames count for whoever called them (embedder, sentiment)
    ("embedding", ("tailor/retrieval/embed.py", "tailor/retrieval/onnx.py")),
    ("search (FAISS, BM25)", ("faiss", "tailor/retrieval/", "bm25s")),
    ("query understanding", ("tailor/nlu/", "rapidfuzz")),
    ("ranking & shopper context", ("tailor/recommend/", "tailor/profiles/")),
    ("actions", ("actions/actions.py",)),
    ("JSON", ("json/", "ujson", "orjson")),
    ("SDK & web server", ("rasa_sdk", "sanic", "asyncio/", "uvloop", "concurrent/futures")),
)


@dataclass
class StageProfile:
    """CPU samples of one process tree, by stage."""

    process: str
    rate: int
    samples: Counter[str]

    @property
    def total(self) -> int:
        """All CPU samples (waiting ones excluded)."""
        return sum(v for k, v in self.samples.items() if k != WAITING)

    def ms_per_turn(self, turns: int) -> dict[str, float]:
        """CPU milliseconds per turn for each stage (samples / rate / turns); waiting
        samples are left out."""
        if turns <= 0:
            raise ValueError(f"turns must be positive, got {turns}")
        return {
            k: v / self.rate * 1000 / turns for k, v in self.samples.most_common() if k != WAITING
        }


#: Innermost frames of a thread that waits rather than computes (a thread pool worker
#: waiting for work, an event loop in epoll): py-spy's --nonblocking sampling cannot always
#: tell them from running code, so they are set apart and not counted as CPU.
WAIT_FRAMES: tuple[tuple[str, str], ...] = (
    ("_worker", "concurrent/futures/thread.py:81)"),
    ("_run_server_forever", "sanic/server/runners.py"),
    ("serve", "sanic/server/runners.py"),
    ("select", "selectors.py"),
    ("wait", "threading.py"),
    ("_recv", "multiprocessing/connection.py"),
)
#: The stage name of waiting samples.
WAITING = "waiting (not CPU)"


def classify(frames: Sequence[str], stages: Sequence[tuple[str, tuple[str, ...]]]) -> str:
    """The stage of one stack (outermost frame first, as py-spy writes them)."""
    if frames:
        innermost = frames[-1].replace("\\", "/")
        if any(innermost.startswith(f + " (") and p in innermost for f, p in WAIT_FRAMES):
            return WAITING
    for frame in reversed(frames):
        low = frame.replace("\\", "/").lower()
        for stage, patterns in stages:
            if any(p in low for p in patterns):
                return stage
    return "other"


def fold(lines: Iterable[str], stages: Sequence[tuple[str, tuple[str, ...]]]) -> Counter[str]:
    """Sum py-spy raw lines (``stack count``) into samples per stage."""
    out: Counter[str] = Counter()
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [f for f in stack.split(";") if f and not f.startswith("process ")]
        out[classify(frames, stages)] += int(count)
    return out


def py_spy() -> str | None:
    """Path of the py-spy executable next to this interpreter, or on PATH."""
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


class Recorder:
    """A running ``py-spy record`` on one process tree (stop it with :meth:`finish`)."""

    def __init__(self, pid: int, out: Path, rate: int = 250) -> None:
        exe = py_spy()
        if exe is None:
            raise RuntimeError("py-spy is not installed (pip install py-spy)")
        self.out = out
        self.rate = rate
        out.parent.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(pid),
                "--subprocesses",
                "--format",
                "raw",
                "--rate",
                str(rate),
                "--nonblocking",
                "--full-filenames",
                "--output",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def finish(self, process: str, stages: Sequence[tuple[str, tuple[str, ...]]]) -> StageProfile:
        """Stop recording (SIGINT makes py-spy write its file) and fold the samples."""
        import signal

        self._proc.send_signal(signal.SIGINT)
        try:
            _, err = self._proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            _, err = self._proc.communicate()
        if not self.out.exists():
            raise RuntimeError(f"py-spy wrote no profile for {process}: {err.strip()[-400:]}")
        with self.out.open(encoding="utf-8") as fh:
            return StageProfile(process, self.rate, fold(fh, stages))
