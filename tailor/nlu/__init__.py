"""Pure-Python language helpers for the custom actions (no Rasa import).

- :mod:`tailor.nlu.price`: "under $80" → ``PriceRange(None, 80.0)``.
- :mod:`tailor.nlu.ordinals`: "the first and third" → indexes into the last shown list.
- :mod:`tailor.nlu.negation`: is an entity span negated ("not red", "I don't like Nike")?
- :mod:`tailor.nlu.refine`: refinement phrases ("cheaper", "other brands", "more like").
- :mod:`tailor.nlu.vocab`: catalog vocabulary and canonicalisation (brands, colours, ...).
- :mod:`tailor.nlu.lookups`: Rasa lookup tables generated from a :class:`Vocabulary`.

Import the submodules directly; this package does no work at import time.
"""

from __future__ import annotations
