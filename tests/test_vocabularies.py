"""Each vocabulary is declared once and derived elsewhere: backend kinds, label sets, risk levels."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import get_args

import mesa
from mesa.graphs import context, nodes
from mesa.safety import policy, rules
from mesa.state import RISK_LEVELS, RiskLevel, SafetyAssessment
from mesa.taxonomy import LABEL_SETS, LabelSetName
from mesa.tools import base, pipeline, registry

SOURCES = {path: path.read_text(encoding="utf-8") for path in Path(mesa.__file__).parent.rglob("*.py")}


def _declarations(*names: str) -> list[str]:
    """The files that spell out ``names`` in this order as one tuple or Literal (eval/ keeps its own task list)."""
    pattern = re.compile(r"[\[(]\s*" + r",\s*".join(f'"{name}"' for name in names) + r"\s*[\])]")
    return sorted(str(path.name) for path, text in SOURCES.items() if pattern.search(text) and "eval" not in path.parts)


def test_backend_kinds_are_declared_once_and_key_every_table():
    assert base.KINDS == get_args(base.BackendKind) and registry.KINDS is base.KINDS
    for table in (base.PROTOCOLS, base.METHODS, base.RESULT_TYPES, base.INPUTS, pipeline.CUES):
        assert sorted(table) == sorted(base.KINDS)
    assert list(inspect.signature(pipeline.Perception).parameters)[: len(base.KINDS)] == list(base.KINDS)
    assert _declarations(*base.KINDS) == ["base.py"]
    assert base.kinds_reading("audio") == ("speech", "voice", "audio_emotion")


def test_label_set_names_are_declared_once():
    assert context.LabelSetName is LabelSetName and nodes.LABEL_FIELDS == LABEL_SETS
    assert _declarations(*LABEL_SETS) == ["taxonomy.py"]


def test_risk_levels_are_one_vocabulary():
    assert rules.LEVELS == RISK_LEVELS == get_args(RiskLevel)
    assert not hasattr(policy, "RiskLevelName")
    judged = policy.SafetyJudgement.model_fields["level"].annotation
    assert judged is SafetyAssessment.model_fields["level"].annotation
    assert _declarations(*RISK_LEVELS) == ["state.py"]
