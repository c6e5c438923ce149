"""Level notations (one parser, as a table) and the free-text condition matcher (negation, history)."""

from __future__ import annotations

import pytest

from fhir_mappings.levels import levels_in_text, names_other_cementoplasty, names_vertebral_site
from fhir_mappings.phrases import default_phrases


@pytest.mark.parametrize(
    ("text", "levels"),
    [
        ("T12, L1", ["T12", "L1"]),
        ("T12", ["T12"]),
        ("T-12", ["T12"]),
        ("L-1", ["L1"]),
        ("T 12 and L 1", ["T12", "L1"]),
        ("Th12", ["T12"]),
        ("Th11 - Th12", ["T11", "T12"]),
        ("D12", ["T12"]),
        ("D11, D12 & L1", ["T11", "T12", "L1"]),
        ("T11-L1", ["T11", "T12", "L1"]),
        ("T11–L1", ["T11", "T12", "L1"]),
        ("T11 thru L1", ["T11", "T12", "L1"]),
        ("T11 through T12", ["T11", "T12"]),
        ("L2 to L4", ["L2", "L3", "L4"]),
        ("L1-3", ["L1", "L2", "L3"]),
        ("T12/L1", ["T12", "L1"]),
        ("T2 STIR hyperintense T12", ["T12"]),
        ("T1-weighted images, L2", ["L2"]),
        ("T13", []),
        ("L6", []),
        ("kyphoplasty", []),
    ],
)
def test_every_level_notation(text: str, levels: list[str]) -> None:
    assert levels_in_text(text) == levels


@pytest.mark.parametrize(
    ("text", "levels"),
    [
        ("T12 kyphoplasty; prior L1 and L2 kyphoplasty", ["T12"]),
        ("T12 kyphoplasty, previous L2 kyphoplasty", ["T12"]),
        ("Prior L1 kyphoplasty, now T12", ["T12"]),
        ("Kyphoplasty L1 (s/p L3 vertebroplasty in 2019)", ["L1"]),
        ("L1 VP. L3 vertebroplasty done in 2021.", ["L1"]),
        ("History of T8 fracture; kyphoplasty T11 and T12", ["T11", "T12"]),
        ("Status post T6 vertebroplasty. Kyphoplasty T10", ["T10"]),
    ],
)
def test_history_never_adds_levels(text: str, levels: list[str]) -> None:
    assert levels_in_text(text) == levels


@pytest.mark.parametrize(
    ("text", "vertebral", "other_bone"),
    [
        ("Cementoplasty L2", True, False),
        ("Cementoplasty of the vertebral body", True, False),
        ("Cementoplasty left acetabulum", False, True),
        ("Sacroplasty", False, True),
        ("Cementoplasty of the iliac bone", False, True),
        ("Cementoplasty, site to be confirmed", False, False),
        ("Balloon kyphoplasty", True, False),
        ("Percutaneous vertebroplasty", True, False),
        ("Kyphoplasty of the sacrum", True, True),
    ],
)
def test_order_text_must_name_a_vertebral_site(text: str, vertebral: bool, other_bone: bool) -> None:
    assert names_vertebral_site(text) is vertebral
    assert names_other_cementoplasty(text) is other_bone


@pytest.mark.parametrize(
    ("text", "groups"),
    [
        ("Discitis L2-3", {"spinal-infection"}),
        ("Spondylodiscitis", {"spinal-infection"}),
        ("Vertebral osteomyelitis", {"spinal-infection"}),
        ("no evidence of discitis", set()),
        ("history of discitis", set()),
        ("discitis ruled out", set()),
        ("r/o epidural abscess", set()),
        ("Epidural abscess T10, no cord compression", {"spinal-infection"}),
        ("Sepsis", {"systemic-infection"}),
        ("Hx of sepsis 2019", set()),
        ("Pregnant, 12 weeks", {"pregnancy"}),
        ("32 year old pregnant", {"pregnancy"}),
        ("not pregnant", set()),
        ("Denies pregnancy", set()),
        ("COPD GOLD 3", {"copd"}),
        ("Severe COPD on 2L home O2", {"copd", "home-oxygen"}),
        ("Centrilobular emphysema", {"emphysema"}),
        ("family history of hemophilia", set()),
        ("thrombocytopenia", {"coagulopathy"}),
        ("cord compression at T12 but no myelopathy", {"neurologic-compromise"}),
        ("Osteoporosis", set()),
        ("Screening for pregnancy", set()),
        ("At risk for sepsis", set()),
    ],
)
def test_free_text_groups_with_negation_and_history(text: str, groups: set[str]) -> None:
    assert default_phrases().groups_in(text) == groups
