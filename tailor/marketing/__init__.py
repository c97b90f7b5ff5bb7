"""Marketing: behavioural triggers (abandoned cart, restock, retention) with frequency caps,
quiet hours, consent and outbound channels, and their measured performance.

Sits beside :mod:`tailor.recommend` in the layering: it uses the recommender, profiles and
the store, and only entry points (CLI, actions, web) use it.
"""

from tailor.marketing.rules import (
    CHANNELS,
    FrequencyCap,
    TriggerConfig,
    TriggerConfigError,
    TriggerRule,
    cap_allows,
    in_quiet_hours,
    load_trigger_config,
    parse_trigger_config,
)
from tailor.marketing.triggers import (
    Firing,
    Offer,
    RulePerformance,
    TriggerEngine,
    abandoned_items,
    format_performance,
    get_default_engine,
    trigger_performance,
)

__all__ = [
    "CHANNELS",
    "Firing",
    "FrequencyCap",
    "Offer",
    "RulePerformance",
    "TriggerConfig",
    "TriggerConfigError",
    "TriggerEngine",
    "TriggerRule",
    "abandoned_items",
    "cap_allows",
    "format_performance",
    "get_default_engine",
    "in_quiet_hours",
    "load_trigger_config",
    "parse_trigger_config",
    "trigger_performance",
]
