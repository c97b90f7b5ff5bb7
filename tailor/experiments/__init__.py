"""A/B experiments on the ranking: definitions (``experiments.toml``), deterministic sticky
assignment, outcome attribution and the report with confidence intervals and tests.

Layering: definitions, assignment, outcomes, stats and report sit below ``recommend``
(which assigns shoppers and applies an arm's weights); :mod:`tailor.experiments.simulate`
drives the real recommender and is imported only by the CLI, never from here.
"""

from tailor.experiments.assignment import Assignment, arm_for, assign, bucket, unit_key
from tailor.experiments.definitions import (
    Arm,
    Experiment,
    ExperimentError,
    find_experiment,
    load_experiments,
    parse_experiments,
)

__all__ = [
    "Arm",
    "Assignment",
    "Experiment",
    "ExperimentError",
    "arm_for",
    "assign",
    "bucket",
    "find_experiment",
    "load_experiments",
    "parse_experiments",
    "unit_key",
]
