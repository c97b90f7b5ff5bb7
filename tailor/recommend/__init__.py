"""Recommendation: criteria across turns, ranking with reasons, replies per channel."""

from tailor.recommend.criteria import Criteria, Entity, ShownProduct, TurnResult, apply_turn
from tailor.recommend.service import (
    Recommendation,
    Recommender,
    Suggestion,
    get_default_recommender,
    set_default_recommender,
)

__all__ = [
    "Criteria",
    "Entity",
    "Recommendation",
    "Recommender",
    "ShownProduct",
    "Suggestion",
    "TurnResult",
    "apply_turn",
    "get_default_recommender",
    "set_default_recommender",
]
