"""References to shown products → 0-based indexes (table-driven)."""

from __future__ import annotations

import pytest

from tailor.nlu.ordinals import OrdinalResult, parse_ordinals

# (text, n_shown, valid indexes, invalid 1-based positions)
CASES: list[tuple[str, int, tuple[int, ...], tuple[int, ...]]] = [
    ("the second one", 3, (1,), ()),
    ("tell me more about the first", 3, (0,), ()),
    ("2nd", 3, (1,), ()),
    ("the 3rd one please", 3, (2,), ()),
    ("#3", 3, (2,), ()),
    ("# 2", 3, (1,), ()),
    ("number 3", 3, (2,), ()),
    ("number two", 3, (1,), ()),
    ("option 2", 3, (1,), ()),
    ("the last one", 4, (3,), ()),
    ("the final one", 4, (3,), ()),
    ("second to last", 4, (2,), ()),
    ("the penultimate one", 4, (2,), ()),
    ("first two", 3, (0, 1), ()),
    ("compare the first two", 3, (0, 1), ()),
    ("top 3", 3, (0, 1, 2), ()),
    ("the last two", 4, (2, 3), ()),
    ("the first and third", 3, (0, 2), ()),
    ("the 1st and the last", 5, (0, 4), ()),
    ("first, second and fourth", 4, (0, 1, 3), ()),
    ("compare 1 and 3", 3, (0, 2), ()),
    ("1 vs 2", 3, (0, 1), ()),
    ("compare 1 to 3", 3, (0, 2), ()),
    ("both", 2, (0, 1), ()),
    ("compare both", 3, (0, 1), ()),
    ("the top one", 3, (0,), ()),
    ("all three", 3, (0, 1, 2), ()),
    ("all of them", 4, (0, 1, 2, 3), ()),
    ("more like the second one", 3, (1,), ()),
    ("the third one and the third", 3, (2,), ()),
    # out of range
    ("the third one", 2, (), (3,)),
    ("tell me about the fifth", 3, (), (5,)),
    ("#10", 3, (), (10,)),
    ("both", 1, (0,), (2,)),
    ("first two", 1, (0,), (2,)),
    ("compare 2 and 7", 3, (1,), (7,)),
    ("the last one", 0, (), ()),
    # no reference
    ("show me running shoes under $80", 3, (), ()),
    ("under 80", 3, (), ()),
    ("size 9 or 10", 3, (), ()),
    ("between 1 and 3 dollars", 3, (), ()),
    ("2 or 3 pairs", 3, (), ()),
    ("first of all, I like it", 3, (), ()),
    ("what about 2", 3, (), ()),
    ("last time I bought nike", 3, (), ()),
    ("that one", 3, (), ()),
    ("", 3, (), ()),
]


@pytest.mark.parametrize(("text", "n", "indexes", "invalid"), CASES, ids=[c[0] for c in CASES])
def test_parse_ordinals(
    text: str, n: int, indexes: tuple[int, ...], invalid: tuple[int, ...]
) -> None:
    result = parse_ordinals(text, n)
    assert result.indexes == indexes
    assert result.invalid == invalid


def test_result_behaves_like_the_index_list() -> None:
    result = parse_ordinals("the first and third", 3)
    assert list(result) == [0, 2]
    assert len(result) == 2 and bool(result)
    assert result.positions == (1, 3)
    assert not OrdinalResult()


def test_negative_count_is_rejected() -> None:
    with pytest.raises(ValueError, match="n_shown"):
        parse_ordinals("first", -1)
