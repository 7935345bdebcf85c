"""What the next AI draft will read, as the study page shows it and lets a radiologist set it:
the body part (no guessing), the prior exam it compares with, and what the last draft was given."""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse

from medportal.imaging.body_part import body_part_refusal, study_texts
from medportal.imaging.models import Instance
from medportal.reporting.models import Report
from medportal.reporting.priors import is_chest_radiograph, prior_candidates, prior_label
from medportal.reporting.provenance import images_summary

# Thumbnails of what the model read: small, and at most this many on the page.
MODEL_IMAGE_THUMB_PX = 96
MODEL_IMAGES_SHOWN = 100


@dataclass(frozen=True)
class ModelImage:
    """One image the model was given, as the page shows it."""

    url: str
    caption: str
    role: str


@dataclass(frozen=True)
class PriorOption:
    value: str  # "auto", "none" or a study's pk
    label: str
    selected: bool


def model_images(report: Report) -> list[ModelImage]:
    """The images of the last draft, in the order the model read them (from its provenance)."""
    records = (report.preprocessing or {}).get("images") or []
    uids = {record.get("sop_instance_uid") for record in records}
    pks = dict(Instance.objects.filter(sop_instance_uid__in=uids).values_list("sop_instance_uid", "pk"))
    shown = []
    for number, record in enumerate(records[:MODEL_IMAGES_SHOWN], start=1):
        pk = pks.get(record.get("sop_instance_uid"))
        if pk is None:  # an image no longer stored
            continue
        url = reverse("instance-image", args=[pk]) + f"?frame={int(record.get('frame', 0))}"
        role = record.get("role", "")
        caption = record.get("label") or (f"{role} {number}" if role else f"image {number}")
        shown.append(ModelImage(url=f"{url}&size={MODEL_IMAGE_THUMB_PX}", caption=caption, role=role))
    return shown


def prior_options(report: Report) -> list[PriorOption]:
    """The choices of prior for a chest radiograph's next draft (empty for any other study)."""
    if not is_chest_radiograph(report.study):
        return []
    candidates = prior_candidates(study=report.study)
    latest = f"the latest: {prior_label(candidates[0])}" if candidates else "none is on file"
    options = [PriorOption("auto", f"Automatic ({latest})", report.prior_choice == "auto")]
    for study in candidates:
        chosen = report.prior_choice == "chosen" and report.prior_study_id == study.pk
        options.append(PriorOption(str(study.pk), prior_label(study), chosen))
    options.append(PriorOption("none", "No prior", report.prior_choice == "none"))
    return options


def draft_setup(report: Report) -> dict:
    """The study page's context for the next draft and the last one."""
    study = report.study
    return {
        "body_part_problem": body_part_refusal(body_part=study.body_part, texts=study_texts(study)),
        "prior_options": prior_options(report),
        "images_line": images_summary(report.preprocessing or {}),
        "model_images": model_images(report),
    }
