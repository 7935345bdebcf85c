"""What the model is given for one draft: the prompt, the user turn's parts (text and images,
in order), and a record of every image and how it was made (the draft's provenance).

Three ways, by what the model can take (``models_table``) and the study:

- **volume**: a CT or MR, for a model that reads volumes: one series (``volume``), at most 85
  slices, as Google's CT notebook: the instruction, then each slice followed by "SLICE n",
  then the question. A study with no series that qualifies is drafted from one slice, and
  the reason is recorded.
- **longitudinal**: a chest X-ray, for a model that compares with priors, when the patient has
  a prior (``medportal.reporting.priors``): the instruction, the prior and the current image
  each after its label, then the question with the prior report's impression. The draft's
  Comparison section, written by the worker (a fact, not the model's), names the prior or
  says there is none.
- **single**: one image after the instruction (a one-image model, or a one-image study).

Nothing is decoded before the study is known to be draftable (modality, body part) and the
images known to fit (MEDPORTAL_MAX_DRAFT_IMAGES and the model's context).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.conf import settings
from PIL import Image

from inference_worker.models_table import ModelAbilities
from inference_worker.pixel_source import instance_header
from inference_worker.preprocessing import model_image, representative_instance
from inference_worker.prompts import Prompt, UnsupportedStudy, prompt_for
from inference_worker.volume import MAX_SLICES, NoVolume, Volume, study_volume, volume_images
from medportal.imaging.body_part import BodyPartUnknown, body_part_resolve, study_texts
from medportal.imaging.models import Instance, Study
from medportal.reporting.drafting_scope import RADIOGRAPHS, normal_body_part, scope_error
from medportal.reporting.models import Report
from medportal.reporting.priors import prior_for_draft, prior_label
from medportal.reporting.report_templates.library import template_for_study, template_sections

logger = logging.getLogger(__name__)

# Tokens of text around each image ("SLICE n", the image's start and end marks) and of the
# prompt's own text, for the estimate made before any image is decoded.
_TOKENS_PER_IMAGE_TEXT = 8
_TOKENS_OF_TEXT = 1024


class DraftRefused(Exception):
    """The study is not drafted; the message says why and what to do (the draft's reason)."""


@dataclass
class DraftInput:
    prompt: Prompt
    parts: list[str | Image.Image]
    preprocessing: dict
    sections: tuple[str, ...]  # the sections the drafted text is split into
    comparison: str = ""  # the Comparison the worker writes itself ("" where it writes none)
    template: object = None
    images_note: str = ""
    images: list[dict] = field(default_factory=list)

    @property
    def image_count(self) -> int:
        return sum(isinstance(part, Image.Image) for part in self.parts)


def _protocol_names(study: Study) -> list[str]:
    """Each series' Protocol Name, from its first DICOM image's header (the database keeps none)."""
    names = []
    for series in study.series.order_by("series_number", "id"):
        first = series.instances.filter(content_type=Instance.DICOM).order_by("instance_number", "id").first()
        if first is not None:
            names.append(str(instance_header(first).get("ProtocolName", "") or ""))
    return names


def study_body_part(study: Study) -> tuple[str, str]:
    """The body part the study is drafted as, and where it came from; DraftRefused otherwise."""
    if (study.body_part or "").strip():
        return body_part_resolve(body_part=study.body_part, texts=[])
    try:
        return body_part_resolve(body_part="", texts=[*study_texts(study), *_protocol_names(study)])
    except BodyPartUnknown as exc:
        raise DraftRefused(str(exc)) from None


def _image_record(instance: Instance, *, role: str, frame: int = 0, label: str = "") -> dict:
    series = instance.series
    record = {
        "role": role,
        "study_uid": series.study.study_uid,
        "series_uid": series.series_uid,
        "sop_instance_uid": instance.sop_instance_uid,
        "frame": frame,
    }
    if label:
        record["label"] = label
    return record


def _check_fits(count: int, abilities: ModelAbilities, what: str) -> None:
    """Refuse, before any pixel is decoded, a draft the model could not take."""
    limit = min(abilities.images, settings.MEDPORTAL_MAX_DRAFT_IMAGES)
    if count > limit:
        because = (
            f"MEDPORTAL_MAX_DRAFT_IMAGES is {settings.MEDPORTAL_MAX_DRAFT_IMAGES}"
            if abilities.images > settings.MEDPORTAL_MAX_DRAFT_IMAGES
            else f"the model takes at most {abilities.images}"
        )
        raise DraftRefused(f"No AI draft: {what} would give the model {count} images, and {because}.")
    estimate = (
        count * (abilities.image_tokens + _TOKENS_PER_IMAGE_TEXT)
        + _TOKENS_OF_TEXT
        + settings.MEDPORTAL_MAX_NEW_TOKENS
    )
    if estimate > abilities.context:
        raise DraftRefused(
            f"No AI draft: {what} would take about {estimate:,} tokens with the answer "
            f"(MEDPORTAL_MAX_NEW_TOKENS={settings.MEDPORTAL_MAX_NEW_TOKENS}); the model's context is "
            f"{abilities.context:,}."
        )


def draft_input(*, report: Report, abilities: ModelAbilities) -> DraftInput:
    study = report.study
    instance = representative_instance(study)
    modality = (instance.series.modality or study.modality or "").upper()
    refused = scope_error(modality)
    if refused:
        raise DraftRefused(refused)
    body_part, body_part_source = study_body_part(study)
    try:
        scope = scope_error(modality, body_part)
        if scope:
            raise UnsupportedStudy(scope)
    except UnsupportedStudy as exc:
        raise DraftRefused(str(exc)) from None
    template = template_for_study(modality=modality, body_part=body_part)
    sections = template_sections(template)
    common = {
        "modality": modality,
        "body_part": body_part,
        "indication": study.indication,
        "template_name": template.name if template else "",
        "template_instruction": template.prompt_instruction if template else "",
        "radiologist_instruction": report.draft_instruction,
        "thinking": abilities.thinking,
    }
    facts = {
        "body_part": body_part,
        "body_part_source": body_part_source,
        "pixel_source": settings.MEDPORTAL_PIXEL_SOURCE,
    }

    if modality in {"CT", "MR"} and abilities.volumes:
        try:
            volume = study_volume(study, modality, limit=MAX_SLICES)
        except NoVolume as exc:
            facts["volume_refused"] = str(exc)
            facts["series_considered"] = exc.considered
        else:
            return _volume_input(volume, modality, abilities, common, sections, template, facts)

    if modality in RADIOGRAPHS and normal_body_part(body_part) == "CHEST" and abilities.priors:
        prior = prior_for_draft(report=report)
        return _chest_input(report, instance, prior, abilities, common, sections, template, facts)

    _check_fits(1, abilities, "this study")
    prompt = prompt_for(**common, sections=sections)
    image, made = model_image(instance, modality)
    record = _image_record(instance, role="current")
    return DraftInput(
        prompt=prompt,
        parts=[prompt.instruction, image],
        preprocessing={**made, "mode": "single", **facts, "images": [record]},
        sections=sections,
        template=template,
        images_note="",
        images=[record],
    )


def volume_parts(prompt: Prompt, images: list[Image.Image]) -> list[str | Image.Image]:
    """The user turn of a volume: the instruction, each slice image with its label, the question
    last (MedGemma's order: any other gives chest-X-ray text for a CT)."""
    parts: list[str | Image.Image] = [prompt.instruction]
    for number, image in enumerate(images, 1):
        parts += [image, f"SLICE {number}"]
    parts.append(prompt.question)
    return parts


def _volume_input(
    volume: Volume, modality: str, abilities: ModelAbilities, common: dict, sections, template, facts: dict
) -> DraftInput:
    count = len(volume.sampled)
    _check_fits(count, abilities, f"this {modality} ({count} slices of series {volume.series.series_number})")
    prompt = prompt_for(**common, sections=sections, slices=count)
    images, made = volume_images(volume, modality)
    parts = volume_parts(prompt, images)
    records = [_image_record(s.instance, role="slice", frame=s.frame) for s in volume.sampled]
    series = volume.series
    return DraftInput(
        prompt=prompt,
        parts=parts,
        preprocessing={
            **made,
            "mode": "volume",
            **facts,
            "series_uid": series.series_uid,
            "series_number": series.series_number,
            "series_description": series.description,
            "plane": "axial",
            "spacing_mm": volume.spacing_mm,
            "thickness_mm": volume.thickness_mm,
            "ordered_by": volume.ordered_by,
            "slices_total": len(volume.slices),
            "slices_given": count,
            "sampling": f"{count} of {len(volume.slices)}"
            + (", uniformly (int(round(i / 85 * (n - 1))), i = 1…85)" if count < len(volume.slices) else ""),
            "series_considered": volume.considered,
            "images": records,
        },
        sections=sections,
        template=template,
        images_note=f"<{count} slice images, each followed by its label: SLICE 1 … SLICE {count}>",
        images=records,
    )


def _chest_input(
    report: Report,
    instance: Instance,
    prior: Study | None,
    abilities,
    common: dict,
    sections,
    template,
    facts,
) -> DraftInput:
    study = report.study
    # The worker writes the Comparison (a fact, not the model's): the model is asked for the rest.
    asked = tuple(s for s in sections if s.lower() != "comparison")
    split = asked
    if prior is None:
        _check_fits(1, abilities, "this chest X-ray")
        prompt = prompt_for(**common, sections=asked)
        image, made = model_image(instance, common["modality"])
        record = _image_record(instance, role="current")
        return DraftInput(
            prompt=prompt,
            parts=[prompt.instruction, image],
            preprocessing={
                **made,
                "mode": "single",
                **facts,
                "prior": None,
                "prior_choice": report.prior_choice,
                "images": [record],
            },
            sections=split,
            comparison="None.",
            template=template,
            images_note="",
            images=[record],
        )
    _check_fits(2, abilities, "this chest X-ray and its prior")
    prior_instance = representative_instance(prior)
    current_label, prior_name = prior_label(study), prior_label(prior)
    impression = getattr(getattr(prior, "report", None), "impression", "") or ""
    prompt = prompt_for(
        **common, sections=asked, prior=prior_name, current=current_label, prior_impression=impression
    )
    prior_image, _ = model_image(prior_instance, (prior_instance.series.modality or prior.modality))
    image, made = model_image(instance, common["modality"])
    records = [
        _image_record(prior_instance, role="prior", label=prior_name),
        _image_record(instance, role="current", label=current_label),
    ]
    return DraftInput(
        prompt=prompt,
        parts=[
            prompt.instruction,
            f"PRIOR ({prior_name}):",
            prior_image,
            f"CURRENT ({current_label}):",
            image,
            prompt.question,
        ],
        preprocessing={
            **made,
            "mode": "longitudinal",
            **facts,
            "prior": {
                "study_uid": prior.study_uid,
                "label": prior_name,
                "date": (prior.study_date or prior.received_at.date()).isoformat(),
                "impression": impression,
            },
            "prior_choice": report.prior_choice,
            "images": records,
        },
        sections=split,
        comparison=prior_name,
        template=template,
        images_note=f"PRIOR ({prior_name}): <image>\nCURRENT ({current_label}): <image>",
        images=records,
    )
