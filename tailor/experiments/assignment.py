"""Deterministic, sticky assignment of shoppers to experiment arms.

The arm is a pure function of the experiment's name and the shopper's key (the customer's
external id, or the conversation's sender id for an anonymous visitor): SHA-256 of both
gives a point in [0, 1), and the arms own consecutive slices of [0, 1) in proportion to
their traffic weights. So a shopper gets the same arm on every turn, in every process and
on every replica, with nothing stored; and different experiments split independently.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tailor.experiments.definitions import Arm, Experiment


@dataclass(frozen=True)
class Assignment:
    """A shopper's arm in one experiment."""

    experiment: str
    arm: str
    #: The arm's ranking-weight overrides (names of ``RankingWeights`` fields).
    weights: Mapping[str, float]

    def to_payload(self) -> dict[str, Any]:
        """What the "shown" event records: ``{"name": ..., "arm": ...}``."""
        return {"name": self.experiment, "arm": self.arm}


def unit_key(customer_external_id: str | None, sender_id: str | None) -> str | None:
    """The randomisation unit: the customer when known, else the conversation."""
    if customer_external_id:
        return f"customer:{customer_external_id}"
    if sender_id:
        return f"sender:{sender_id}"
    return None


def bucket(experiment: str, key: str) -> float:
    """A uniform point in [0, 1) from SHA-256 of the experiment name and the unit key."""
    digest = hashlib.sha256(f"{experiment}\x1f{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def arm_for(experiment: Experiment, key: str) -> Arm:
    """The arm ``key`` falls in: arms own consecutive slices proportional to their traffic."""
    point = bucket(experiment.name, key) * sum(a.traffic for a in experiment.arms)
    upto = 0.0
    for arm in experiment.arms:
        upto += arm.traffic
        if point < upto:
            return arm
    return experiment.arms[-1]  # float rounding at the very top of the range


def assign(
    experiments: Sequence[Experiment],
    key: str | None,
    segments: Mapping[str, str],
    now: datetime,
) -> Assignment | None:
    """The shopper's arm in the first experiment (file order) that is running at ``now`` and
    targets their ``segments``; ``None`` when there is no key or no such experiment.

    A shopper takes part in at most one experiment at a time, so two experiments never
    change the same ranking for one shopper.
    """
    if not key:
        return None
    for experiment in experiments:
        if experiment.active(now) and experiment.targets(segments):
            arm = arm_for(experiment, key)
            return Assignment(experiment.name, arm.name, dict(arm.weights))
    return None
