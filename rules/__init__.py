"""The decision core: facts and thresholds in, findings out. Standard library and pydantic only."""

from rules.catalog import CATALOG, evaluate
from rules.facts import ClinicalFacts
from rules.findings import Criterion, Evaluation, Finding
from rules.thresholds import DEFAULT_THRESHOLDS, RULE_IDS, Thresholds

__all__ = [
    "CATALOG",
    "DEFAULT_THRESHOLDS",
    "RULE_IDS",
    "ClinicalFacts",
    "Criterion",
    "Evaluation",
    "Finding",
    "Thresholds",
    "evaluate",
]
