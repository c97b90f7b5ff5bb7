"""The Rasa project in bot/ agrees with itself and with the entity patterns (no Rasa import).

Rasa's RegexEntityExtractor only finds what the regexes in data/nlu.yml and the generated
lookup tables match, so every annotation must be exactly such a match; this test replays
what Rasa 3.6 does (rasa/nlu/utils/pattern_utils.py) with a vocabulary that names every
brand, colour, material and product type used in the examples.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from tailor.config import PROJECT_ROOT
from tailor.nlu.lookups import render_lookups
from tailor.nlu.vocab import Vocabulary

BOT = PROJECT_ROOT / "bot"
INTENTS = {
    "greet",
    "goodbye",
    "ask_recommendation",
    "refine",
    "ask_product_details",
    "compare",
    "react_positive",
    "react_negative",
    "affirm",
    "deny",
    "thank",
    "reset",
    "out_of_scope",
    "human_handoff",
    "bot_challenge",
    "ask_my_data",
    "forget_me",
}
ENTITIES = {
    "product_type",
    "brand",
    "colour",
    "material",
    "size",
    "price",
    "ordinal",
    "refinement",
}
VOCAB = Vocabulary(
    brands=[
        "Nike",
        "Adidas",
        "Asics",
        "Brooks",
        "New Balance",
        "Puma",
        "Sony",
        "Bose",
        "Apple",
        "Patagonia",
        "The North Face",
        "Levi's",
    ],
    colours=["blue", "red", "black", "white", "grey", "green", "navy"],
    materials=["leather", "mesh", "cotton", "denim"],
    categories=[
        "Shoes > Running Shoes",
        "Shoes > Hiking Boots",
        "Shoes > Sneakers",
        "Clothing > Jackets",
        "Clothing > T-Shirts",
        "Clothing > Jeans",
        "Clothing > Hoodies",
        "Audio > Headphones",
        "Electronics > Laptops",
        "Home > Sofas",
        "Home > Lamps",
    ],
)
_ANNOTATION = re.compile(
    r"\[(?P<text>[^\]]+?)\](?:\((?P<entity>[^:)]+?)(?::(?P<value>[^)]+))?\)|(?P<dict>\{[^}]+?\}))"
)


def _yaml(name: str) -> Any:
    return yaml.safe_load((BOT / name).read_text(encoding="utf-8"))


def _examples(block: str) -> list[str]:
    return [line[1:].strip() for line in block.splitlines() if line.strip()]


def _parse(example: str) -> tuple[str, set[tuple[str, int, int, str]]]:
    """Plain text and (entity, start, end, value) annotations of one training example."""
    text, entities, offset = "", set(), 0
    for m in _ANNOTATION.finditer(example):
        text += example[offset : m.start()]
        start = len(text)
        text += m.group("text")
        if m.group("dict"):
            spec = json.loads(m.group("dict"))
            entity, value = spec["entity"], spec.get("value", m.group("text"))
        else:
            entity, value = m.group("entity"), m.group("value") or m.group("text")
        entities.add((entity, start, len(text), value))
        offset = m.end()
    return text + example[offset:], entities


@pytest.fixture(scope="module")
def nlu() -> list[dict[str, Any]]:
    """Every hand-written NLU file (the generated lookups are tested on their own)."""
    return list(_yaml("data/nlu.yml")["nlu"]) + list(_yaml("data/out_of_scope.yml")["nlu"])


def test_every_intent_has_enough_varied_examples(nlu: list[dict[str, Any]]) -> None:
    counts: Counter[str] = Counter()
    for item in nlu:
        if "intent" in item:
            counts[item["intent"]] += len(_examples(item["examples"]))
    assert set(counts) == INTENTS
    assert min(counts.values()) >= 25, counts
    for intent in ("ask_recommendation", "refine", "react_negative", "out_of_scope"):
        assert counts[intent] >= 40, (intent, counts[intent])
    texts = [
        _parse(e)[0].lower()
        for item in nlu
        if "intent" in item
        for e in _examples(item["examples"])
    ]
    duplicated = [t for t, n in Counter(texts).items() if n > 1]
    assert not duplicated


def test_hand_written_data_has_no_catalog_lookups(nlu: list[dict[str, Any]]) -> None:
    assert not [item for item in nlu if "lookup" in item]


def test_domain_and_rules_follow_the_contract() -> None:
    domain = _yaml("domain.yml")
    assert set(domain["intents"]) == INTENTS
    assert set(domain["entities"]) == ENTITIES
    for name, slot in domain["slots"].items():
        assert slot["influence_conversation"] is False, name
        assert slot["mappings"] == [{"type": "custom"}], name
    rules = _yaml("data/rules.yml")["rules"]
    # rules that start with the bot's question (e.g. forgetting's confirmation) come after
    by_intent = {
        r["steps"][0]["intent"]: r["steps"][1]["action"] for r in rules if "intent" in r["steps"][0]
    }
    assert set(by_intent) == INTENTS | {"nlu_fallback"}
    for action in by_intent.values():
        assert action in domain["responses"] or action in domain["actions"], action
    assert domain["session_config"] == {
        "session_expiration_time": 60,
        "carry_over_slots_to_new_session": True,
    }


def test_annotations_are_exactly_what_the_extractor_finds(nlu: list[dict[str, Any]]) -> None:
    # Out-of-scope examples are not annotated: whatever the extractor finds in "how long do
    # leftovers last" is ignored, since no action reads entities of an out-of-scope message.
    nlu = [item for item in nlu if item.get("intent") != "out_of_scope"]
    generated = yaml.safe_load(render_lookups(VOCAB))["nlu"]
    patterns: list[tuple[str, re.Pattern[str]]] = []
    synonyms: dict[str, str] = {}
    for item in nlu:
        if "regex" in item:
            for source in _examples(item["examples"]):
                patterns.append((item["regex"], re.compile(source, re.IGNORECASE)))
    for item in generated:
        if "lookup" in item:
            elements = [re.escape(e) for e in _examples(item["examples"])]
            body = "(\\b" + "\\b|\\b".join(elements) + "\\b)"
            patterns.append((item["lookup"], re.compile(body, re.IGNORECASE)))
        elif "synonym" in item:
            for phrase in _examples(item["examples"]):
                synonyms[phrase.lower()] = item["synonym"]
    assert {name for name, _ in patterns} == ENTITIES

    mismatches = []
    for item in nlu:
        if "intent" not in item:
            continue
        for example in _examples(item["examples"]):
            text, wanted = _parse(example)
            found = set()
            for name, pattern in patterns:
                for m in pattern.finditer(text):
                    value = synonyms.get(m.group(0).lower(), m.group(0))
                    found.add((name, m.start(), m.end(), value))
            if found != wanted:
                mismatches.append((example, sorted(wanted - found), sorted(found - wanted)))
    assert not mismatches


def test_test_stories_exist() -> None:
    stories = _yaml("tests/test_stories.yml")["stories"]
    assert len(stories) >= 8
    assert Path(BOT / "credentials.yml").exists() and Path(BOT / "endpoints.yml").exists()
