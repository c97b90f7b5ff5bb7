"""Train the sentiment adapter: LoRA on the frozen MiniLM encoder + a 3-class linear head.

Data: a seeded subset of SST-2 train (negative/positive) mixed with the training part of our
shopping-reaction set (negative/neutral/positive, oversampled). SST-2 has no neutral class,
so the loss weights classes by the inverse square root of their frequency in the mix, which
keeps the neutral examples (shopping set only) from being drowned out.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import random
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tailor.sentiment.data import (
    HELDOUT_EVERY,
    SHOPPING_REACTIONS,
    load_shopping,
    load_sst2,
    load_uci,
    resolve_sst2,
    sample,
    split_shopping,
)
from tailor.sentiment.model import (
    ADAPTER_FORMAT,
    ADAPTER_WEIGHTS,
    LABELS,
    SentimentModel,
    build_classifier,
)

logger = logging.getLogger(__name__)

#: LoRA on every linear layer of the 6 transformer blocks.
DEFAULT_LORA: dict[str, Any] = {
    "r": 8,
    "alpha": 16,
    "dropout": 0.05,
    "targets": [
        "attention.self.query",
        "attention.self.key",
        "attention.self.value",
        "attention.output.dense",
        "intermediate.dense",
        "output.dense",
    ],
}


@dataclass
class TrainReport:
    """What :func:`train` did: where it wrote, how long it took and the accuracies."""

    output_dir: Path
    seconds: float
    steps: int
    examples: dict[str, int]
    metrics: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["output_dir"] = str(self.output_dir)
        return data


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def encoder_fingerprint(encoder_path: str | Path) -> dict[str, str]:
    """Name and sha256 of the encoder's weights, recorded in (and checked against) manifests."""
    root = Path(encoder_path)
    info = {"name": root.parent.name if root.name == "model" else root.name}
    weights = root / "model.safetensors"
    if weights.is_file():
        info["sha256"] = _file_sha256(weights)
    return info


def _batches(
    rows: list[tuple[str, int]], batch_size: int, rng: random.Random
) -> list[list[tuple[str, int]]]:
    """Shuffled batches of similar-length texts (less padding, same randomness per epoch)."""
    rows = list(rows)
    rng.shuffle(rows)
    chunk = batch_size * 50
    batches = []
    for start in range(0, len(rows), chunk):
        part = sorted(rows[start : start + chunk], key=lambda r: len(r[0]))
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def train(
    output_dir: str | Path,
    sst2_path: str | Path | None,
    shopping_path: str | Path | None = None,
    encoder_path: str | Path | None = None,
    *,
    max_sst2: int | None = 16_000,
    epochs: int = 1,
    seed: int = 42,
    batch_size: int = 32,
    lr: float = 1e-3,
    max_length: int = 64,
    shopping_repeat: int = 8,
    lora: dict[str, Any] | None = None,
    max_steps: int | None = None,
    evaluate_on: dict[str, str | Path] | None = None,
    threads: int = 1,
    progress: bool = True,
) -> TrainReport:
    """Train the adapter and write ``adapter.safetensors`` + ``manifest.json`` to ``output_dir``.

    ``sst2_path`` is the SST-2 ``train.tsv``, its folder or the ``sentiment/`` folder (``None``:
    shopping reactions only). ``shopping_path`` defaults to the shipped reaction set, of which
    every 5th row is held out. ``max_steps`` stops early (for tests). ``threads``
    is torch's thread count: 1 by default, as on a 2-core machine shared with other work
    2 threads measured 5-10x slower than 1. ``evaluate_on`` maps
    metric names to data (see :func:`tailor.sentiment.evaluation`); by default the shopping
    held-out part, plus SST-2 dev and the UCI sentences when they are found next to
    ``sst2_path``. The metrics go into the manifest and the report.
    """
    import torch
    from safetensors.torch import save_file
    from tqdm.auto import tqdm
    from transformers import AutoTokenizer

    from tailor.sentiment.evaluation import evaluate

    started = time.perf_counter()
    if encoder_path is None:
        from tailor.config import Settings

        encoder_path = Settings.load().embedding_model
    lora = dict(DEFAULT_LORA if lora is None else lora)
    out = Path(output_dir)
    random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(max(1, threads))

    # -- data
    shopping_all = load_shopping(shopping_path)
    shop_train, shop_heldout = split_shopping(shopping_all)
    sst2 = sample(load_sst2(sst2_path), max_sst2, seed) if sst2_path is not None else []
    label_id = {name: i for i, name in enumerate(LABELS)}
    mix = [(t, label_id[y]) for t, y in sst2]
    mix += [(t, label_id[y]) for t, y in shop_train] * shopping_repeat
    counts = Counter(y for _, y in mix)
    weights = torch.tensor(
        [1.0 / math.sqrt(counts.get(i, 0) or 1) for i in range(len(LABELS))], dtype=torch.float
    )
    weights = weights * len(LABELS) / weights.sum()
    logger.info(
        "training on %d SST-2 + %d×%d shopping rows", len(sst2), len(shop_train), shopping_repeat
    )

    # -- model
    tokenizer = AutoTokenizer.from_pretrained(str(encoder_path))
    model = build_classifier(encoder_path, lora, len(LABELS))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    rng = random.Random(seed)
    steps_per_epoch = math.ceil(len(mix) / batch_size)
    total = (
        steps_per_epoch * epochs if max_steps is None else min(max_steps, steps_per_epoch * epochs)
    )
    warmup = max(1, int(0.06 * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (
            (s + 1) / warmup if s < warmup else max(0.0, (total - s) / max(1, total - warmup))
        ),
    )
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights)

    model.train()
    step = 0
    bar = tqdm(total=total, disable=not progress, file=sys.stderr, desc="Training", unit="step")
    with bar:
        for _epoch in range(epochs):
            for batch in _batches(mix, batch_size, rng):
                if step >= total:
                    break
                enc = tokenizer(
                    [t for t, _ in batch],
                    padding=True,
                    truncation=True,
                    max_length=max_length,
                    return_tensors="pt",
                )
                target = torch.tensor([y for _, y in batch])
                logits = model(enc["input_ids"], enc["attention_mask"])
                loss = loss_fn(logits, target)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                bar.update(1)
                if step % 20 == 0:
                    bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    train_seconds = time.perf_counter() - started

    # -- evaluation
    predictor = SentimentModel.from_module(model, tokenizer, LABELS, max_length=128)
    if evaluate_on is None:
        evaluate_on = {}
        if sst2_path is not None:
            with contextlib.suppress(FileNotFoundError):
                evaluate_on["sst2_dev"] = resolve_sst2(sst2_path, "dev")
            sentiment_dir = resolve_sst2(sst2_path).parent.parent
            if (sentiment_dir / "uci").is_dir():
                evaluate_on["uci"] = sentiment_dir / "uci"
    metrics: dict[str, float] = {}
    for name, data in evaluate_on.items():
        rows: Any = load_uci(data) if name == "uci" else data
        if name == "sst2_dev":
            rows = load_sst2(data, "dev")
        metrics[name] = round(evaluate(predictor, rows), 4)
    if shop_heldout:
        metrics["shopping_heldout"] = round(evaluate(predictor, shop_heldout, binary=False), 4)
        polar = [r for r in shop_heldout if r[1] != "neutral"]
        metrics["shopping_heldout_binary"] = round(evaluate(predictor, polar, binary=True), 4)

    # -- save (only the LoRA + head tensors, as float16)
    out.mkdir(parents=True, exist_ok=True)
    state = {
        k: v.detach().to(torch.float16).contiguous()
        for k, v in model.trainable_state_dict().items()
    }
    save_file(state, str(out / ADAPTER_WEIGHTS), metadata={"format": ADAPTER_FORMAT})
    (out / ADAPTER_WEIGHTS).chmod(0o644)  # safetensors writes 0600
    examples = {
        "sst2": len(sst2),
        "shopping_train": len(shop_train),
        "shopping_heldout": len(shop_heldout),
    }
    manifest = {
        "format": ADAPTER_FORMAT,
        "weights": ADAPTER_WEIGHTS,
        "labels": list(LABELS),
        "encoder": encoder_fingerprint(encoder_path),
        "pooling": "mean",
        "max_length": 128,
        "lora": lora,
        "trainable_parameters": int(sum(p.numel() for p in params)),
        "training": {
            "data": {
                "sst2": f"SST-2 train, seeded random subset of {len(sst2)} sentences",
                "shopping": (
                    f"{Path(shopping_path or SHOPPING_REACTIONS).name}"
                    f": {len(shop_train)} rows (every {HELDOUT_EVERY}th row held out),"
                    f" repeated {shopping_repeat}x"
                ),
            },
            "class_weights": [round(float(w), 4) for w in weights],
            "epochs": epochs,
            "steps": step,
            "batch_size": batch_size,
            "lr": lr,
            "train_max_length": max_length,
            "seed": seed,
            "seconds": round(train_seconds, 1),
            "torch": torch.__version__,
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        },
        "metrics": metrics,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return TrainReport(out, round(time.perf_counter() - started, 1), step, examples, metrics)
