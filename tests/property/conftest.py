"""Hypothesis profile for the property suite: bounded, deterministic, no example database
(so a run leaves nothing behind and CI sees the same examples every time)."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "tailor",
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("tailor")
