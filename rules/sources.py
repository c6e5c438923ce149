"""The guidelines and data sources the rules cite (ids as in shared/reference/clinical-rules.md §0).

A card's `source` and every default threshold point at one of these, so a clinician can read
the text a decision rests on. A label names the document its url opens (the card's `source` and
`links` show both side by side), never a different one.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Source(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    label: str
    url: str | None


_ALL = (
    Source(
        id="S1",
        label="CMS LCD L38201 Percutaneous Vertebral Augmentation for VCF",
        url="https://www.cms.gov/medicare-coverage-database/view/lcd.aspx?lcdid=38201",
    ),
    Source(
        id="S2",
        label="SIR 2019 consensus on periprocedural bleeding risk (Patel IJ et al., JVIR 2019)",
        url="https://doi.org/10.1016/j.jvir.2019.04.017",
    ),
    Source(
        id="S3",
        label="ASRA/ESRA 2018 spine and pain procedures on antithrombotics (Narouze S et al.)",
        url="https://doi.org/10.1097/AAP.0000000000000700",
    ),
    Source(
        id="S4",
        label="2023 ACC/AHA/ACCP/HRS atrial fibrillation guideline, Table 18 (OAC interruption)",
        url="https://www.ahajournals.org/doi/10.1161/CIR.0000000000001193",
    ),
    Source(
        id="S5",
        label="NASS Appropriate Use Criteria for vertebral compression fractures (results)",
        url="https://north-american-spine-society.foleon.com/ebooks-research/osteoporotic-vertebral-fractures-auc/results",
    ),
    Source(
        id="S6",
        label="RAND/UCLA VCF clinical care pathway (Hirsch JA et al., Spine J 2018)",
        url="https://doi.org/10.1016/j.spinee.2018.07.025",
    ),
    Source(
        id="S7",
        label="IMWG recommendations on vertebral augmentation in myeloma (Blood Cancer J 2019)",
        url="https://www.nature.com/articles/s41408-019-0187-7",
    ),
    Source(
        id="S9",
        label="Radiopaedia: vertebroplasty (contraindications per SIR QI guidelines, McGraw 2003)",
        url="https://radiopaedia.org/articles/vertebroplasty",
    ),
    Source(
        id="S10",
        label="eviCore clinical guidelines (CMM-607 vertebral augmentation, payer policy)",
        url="https://www.evicore.com/provider/clinical-guidelines",
    ),
    Source(
        id="S11",
        label="Palmowski Y et al., timing of kyphoplasty (Eur Spine J 2020)",
        url="https://doi.org/10.1007/s00586-020-06491-8",
    ),
    Source(
        id="S12",
        label="Pulmonary cement embolism risk factors (Research Square preprint rs-309630)",
        url="https://www.researchsquare.com/article/rs-309630/v1",
    ),
    Source(id="S13", label="GOLD COPD report (spirometric grades)", url="https://goldcopd.org"),
    Source(
        id="S14",
        label="ICD-10-CM FY2026 tabular (CDC/CMS)",
        url="https://www.cms.gov/medicare/coding-billing/icd-10-codes",
    ),
    Source(
        id="S15",
        label="ICD-10-PCS 2025 and GEMs (CMS)",
        url="https://www.cms.gov/medicare/coding-billing/icd-10-codes",
    ),
    Source(
        id="S16",
        label="DICOM PS3.16 CID 7603 Vertebra",
        url="https://dicom.nema.org/medical/dicom/current/output/chtml/part16/sect_CID_7603.html",
    ),
    Source(
        id="S17",
        label="HL7 FHIR R4 ServiceRequest (read through CDS Hooks order-select / order-sign)",
        url="https://hl7.org/fhir/R4/servicerequest.html",
    ),
    Source(
        id="S18",
        label="Grafe IA et al., MRI edema and kyphoplasty outcome (Eur J Trauma Emerg Surg 2011)",
        url="https://doi.org/10.1007/s00068-010-0050-9",
    ),
    Source(
        id="S19",
        label="CDS Hooks sandbox, PAMA imaging screen: procedure codes offered (pama-procedure-codes.json)",
        url="https://github.com/cds-hooks/sandbox/blob/master/src/assets/pama-procedure-codes.json",
    ),
    Source(
        id="S20",
        label="AMA CPT, Radiology: radiologic examination of the spine (72020-72120)",
        url="https://www.ama-assn.org/practice-management/cpt",
    ),
    Source(
        id="INSTITUTIONAL",
        label="Institutional default (no guideline states this figure; review locally)",
        url=None,  # nothing public to point at: named in the detail, never linked
    ),
    Source(
        id="WHO",
        label="WHO diagnostic criteria for osteoporosis (T-score ≤ −2.5)",
        url="https://www.who.int/publications/i/item/9241208430",
    ),
)

SOURCES: dict[str, Source] = {source.id: source for source in _ALL}


def source(source_id: str) -> Source:
    return SOURCES[source_id]
