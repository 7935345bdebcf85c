"""What the AI contributed to a report, in the one form every export carries (PDF, FHIR,
DICOM SR, HL7): the model and its revision, the template and prompt, the generation
parameters and the image preprocessing."""

from __future__ import annotations

from medportal.accounts.names import display_name
from medportal.reporting.models import Report


def report_provenance(report: Report) -> dict:
    """The AI provenance of ``report``; ``{"ai_assisted": False}`` when no AI draft was written."""
    if not report.model_id:
        return {"ai_assisted": False}
    return {
        "ai_assisted": True,
        "model_id": report.model_id,
        "model_revision": report.model_revision,
        "template": report.template_name,
        "prompt": report.prompt,
        "instruction": report.draft_instruction,
        "generation_params": report.generation_params,
        "preprocessing": report.preprocessing,
        "drafted_at": report.draft_finished_at.isoformat() if report.draft_finished_at else None,
        "time_to_first_token_ms": report.time_to_first_token_ms,
        "tokens_per_second": report.tokens_per_second,
        "generated_tokens": report.generated_tokens,
    }


def provenance_line(report: Report) -> str:
    """One sentence for a reader of the report: was it AI-assisted, by what, and who signed."""
    signer = display_name(report.signed_by) or None
    if not report.model_id:
        return f"Written by the radiologist{f' ({signer})' if signer else ''}; no AI draft was used."
    revision = f" (revision {report.model_revision})" if report.model_revision else ""
    template = f", template “{report.template_name}”" if report.template_name else ""
    review = f"reviewed, edited as needed and signed by {signer}" if signer else "not yet signed"
    return f"AI-assisted: the draft was written by {report.model_id}{revision}{template}; {review}."


def _mm(value) -> str:
    return f"{value:g} mm" if isinstance(value, int | float) else ""


def images_summary(preprocessing: dict) -> str:
    """One line for the study page: what the model was given for the draft, e.g.
    "read 85 of 312 slices of series 3, axial 1.25 mm" or "read the current chest X-ray; prior
    2026-03-01". "" when the draft recorded none (a draft older than this record)."""
    mode = preprocessing.get("mode")
    if mode == "volume":
        spacing = _mm(preprocessing.get("spacing_mm"))
        plane = " ".join(filter(None, [preprocessing.get("plane", "axial"), spacing]))
        return (
            f"read {preprocessing['slices_given']} of {preprocessing['slices_total']} slices of series "
            f"{preprocessing.get('series_number') or preprocessing.get('series_uid')}, {plane}"
        )
    if mode == "longitudinal":
        prior = preprocessing.get("prior") or {}
        return f"read the current image; prior {prior.get('date', '?')}"
    if mode == "single":
        line = "read one image"
        if preprocessing.get("volume_refused"):
            line += " (no series could be read as a volume)"
        if "prior" in preprocessing and preprocessing["prior"] is None:
            line += "; no prior"
        return line
    return ""
