"""What MedGemma drafts: one table read by the worker's prompt (inference_worker.prompts) and by
the report templates (a template for a study MedGemma does not draft would never be used).

No Django imports: the worker and the web process both read it.
"""

from __future__ import annotations

# The modalities MedGemma 4B drafts; of radiographs (CR, DX), only the chest.
DRAFTED_MODALITIES = ("CR", "DX", "CT", "MR")
RADIOGRAPHS = frozenset({"CR", "DX"})
SUPPORTED = "chest X-rays (CR/DX), CT and MR"

# DICOM Body Part Examined values that name the chest; stored and matched as CHEST.
_CHEST_WORDS = frozenset({"CHEST", "THORAX", "LUNG"})


def normal_body_part(body_part: str) -> str:
    """A Body Part Examined as templates store and match it: upper case, THORAX and LUNG as CHEST."""
    value = (body_part or "").strip().upper()
    return "CHEST" if value in _CHEST_WORDS else value


def study_body_part(modality: str, body_part: str) -> str:
    """The body part a study is drafted as, as templates match it. Blank stays blank: nothing is
    assumed from the modality (a radiograph without a body part is not a chest X-ray); the worker
    drafts only once the body part is known (medportal.imaging.body_part)."""
    return normal_body_part(body_part)


def scope_error(modality: str, body_part: str = "", *, for_template: bool = False) -> str | None:
    """Why MedGemma does not draft this modality and body part, or None when it does.

    ``for_template``: the words fit a template's form (a blank body part there means "any").
    """
    modality = (modality or "").strip().upper()
    if modality not in DRAFTED_MODALITIES:
        if for_template:
            return (
                f"MedGemma drafts {SUPPORTED}; a template for {modality or 'no modality'} "
                "would never be used. Choose CR, DX, CT or MR."
            )
        return (
            f"No AI draft: MedGemma drafts {SUPPORTED}; this study's modality is "
            f"{modality or 'not given'}. Write the report by hand."
        )
    part = normal_body_part(body_part)
    if modality in RADIOGRAPHS and part and part != "CHEST":
        if for_template:
            return (
                f"Of radiographs, MedGemma drafts only the chest; a {modality} template for the "
                f"{part.lower()} would never be used. Leave the body part blank or choose CHEST."
            )
        return (
            f"No AI draft: of radiographs, MedGemma drafts only the chest; this one is of the "
            f"{body_part.lower()}. Write the report by hand."
        )
    return None
