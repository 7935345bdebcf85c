"""The one place the draft's prompt is built: by modality, with the report template's
instruction and sections, the clinical indication and the radiologist's request.
Each prompt has a name and version recorded with every draft."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from medportal.reporting.drafting_scope import SUPPORTED, scope_error

__all__ = ["SUPPORTED", "Prompt", "UnsupportedStudy", "prompt_for", "prompt_safe"]

SYSTEM_PROMPT = "You are an expert radiologist."

# Sections a report has without a template that says otherwise.
DEFAULT_SECTIONS = ("Findings", "Impression")


# MedGemma 1.5 thinks before answering when its system prompt begins with this (MEDGEMMA.md);
# the trace it writes is kept out of the report (inference_worker.thinking).
THINKING_PREFIX = "SYSTEM INSTRUCTION: think silently if needed. "


@dataclass(frozen=True)
class Prompt:
    """The system prompt, and the user turn's text around its images: ``instruction`` comes
    before the images, ``question`` after them (empty in one-image mode, where the instruction
    says it all and the image follows it, as MedPortal always did)."""

    name: str
    system: str
    instruction: str
    template: str = ""  # the report template's name, when one was used
    question: str = ""

    def as_record(self, images: str = "") -> str:
        template = f"; template: {self.template}" if self.template else ""
        middle = f"\n{images}" if images else ""
        question = f"\n{self.question}" if self.question else ""
        return f"[{self.name}{template}]\nSYSTEM: {self.system}\nUSER: {self.instruction}{middle}{question}"


_INSTRUCTIONS = {
    "CR": ("cxr-v1", "Describe this chest X-ray."),
    "DX": ("cxr-v1", "Describe this chest X-ray."),
    "CT": ("ct-slice-v1", "This is one representative axial slice of a CT study{body}. Describe it."),
    "MR": ("mr-slice-v1", "This is one representative slice of an MR study{body}. Describe it."),
}
# A whole series (MedGemma 1.5), in the order of Google's CT notebook: this text, then each
# slice followed by "SLICE n", then the question last (any other order gives chest X-ray
# boilerplate for a CT: google-health/medgemma issue #76).
_VOLUME = {
    "CT": ("ct-volume-v1", "CT"),
    "MR": ("mr-volume-v1", "MR"),
}
_VOLUME_INSTRUCTION = (
    "You are an expert radiologist reading a {kind} study{body}. You are given {count} axial slices "
    "of one series, in order, each followed by its number. Please review the slices provided below "
    "carefully."
)
_VOLUME_QUESTION = (
    "Based on the visual evidence in the slices provided above, write the report of this {kind} study{body}."
)
# The prior and the current chest X-ray in one user turn, each labelled with its date, as in
# Google's longitudinal notebook (the images before the question that compares them).
_LONGITUDINAL_INSTRUCTION = (
    "You are an expert radiologist comparing two chest X-rays of the same patient: the prior exam "
    "and the current one, each labelled with its date."
)
_LONGITUDINAL_QUESTION = (
    "Compare the two above images. Describe the current chest X-ray ({current}) and say what is "
    "unchanged, worsened or improved since the prior ({prior})."
)


# Gemma's control tokens must never come from user text (an indication could end the
# turn or open an image slot): they are removed before the text joins the prompt.
_CONTROL_TOKENS = re.compile(
    r"</?(?:start_of_turn|end_of_turn|start_of_image|end_of_image|image_soft_token|bos|eos|pad|unk|mask)>",
    re.IGNORECASE,
)


def prompt_safe(text: str) -> str:
    return _CONTROL_TOKENS.sub("", text)


class UnsupportedStudy(Exception):
    """A study MedGemma 4B should not draft; the message says what it does draft."""


def _sections_line(sections: Sequence[str]) -> str:
    if tuple(sections) == DEFAULT_SECTIONS:
        return "Write the report with a FINDINGS section and an IMPRESSION section."
    names = ", ".join(name.upper() for name in sections)
    return f"Write the report with these sections, in this order, each under its heading: {names}."


def _details(
    *,
    indication: str,
    template_instruction: str,
    sections: Sequence[str],
    radiologist_instruction: str,
) -> list[str]:
    lines = []
    if indication.strip():
        lines.append(f"Clinical indication: {prompt_safe(indication).strip()}")
    if template_instruction.strip():
        lines.append(prompt_safe(template_instruction).strip())
    lines.append(_sections_line(sections))
    if radiologist_instruction.strip():
        lines.append(
            f"The radiologist's request for this draft: {prompt_safe(radiologist_instruction).strip()}"
        )
    return lines


def prompt_for(
    *,
    modality: str,
    body_part: str = "",
    indication: str = "",
    template_name: str = "",
    template_instruction: str = "",
    sections: Sequence[str] = DEFAULT_SECTIONS,
    radiologist_instruction: str = "",
    slices: int = 0,
    prior: str = "",
    current: str = "",
    prior_impression: str = "",
    thinking: bool = False,
) -> Prompt:
    """The prompt for a study, or UnsupportedStudy rather than a report of the wrong kind.

    ``body_part`` is the one the study is drafted as (medportal.imaging.body_part: never
    guessed); a study without one is refused. ``template_instruction`` and ``sections`` come
    from the report template chosen for the study; ``radiologist_instruction`` is the
    radiologist's request for this draft. ``slices``: a CT/MR read as a volume of that many
    slices. ``prior`` and ``current``: a chest X-ray compared with its prior, each named by its
    label ("CR chest, 2026-03-01"), with the prior report's impression. ``thinking``: the
    model may think first (its system prompt says so). Text typed by people has Gemma's
    control tokens removed before it joins the prompt.
    """
    modality = (modality or "").upper()
    refused = scope_error(modality, body_part)
    if refused:
        raise UnsupportedStudy(refused)
    if not (body_part or "").strip():
        raise UnsupportedStudy(
            "No AI draft: the study's body part is not known. "
            "Set the body part on the study page, then draft."
        )
    system = (THINKING_PREFIX if thinking else "") + SYSTEM_PROMPT
    details = _details(
        indication=indication,
        template_instruction=template_instruction,
        sections=sections,
        radiologist_instruction=radiologist_instruction,
    )
    body = f" of the {body_part.lower()}"
    if slices and modality in _VOLUME:
        name, kind = _VOLUME[modality]
        return Prompt(
            name=name,
            system=system,
            instruction=_VOLUME_INSTRUCTION.format(kind=kind, body=body, count=slices),
            question="\n".join([_VOLUME_QUESTION.format(kind=kind, body=body), *details]),
            template=template_name,
        )
    if prior and modality in {"CR", "DX"}:
        impression = prompt_safe(prior_impression).strip() or "not recorded"
        return Prompt(
            name="cxr-longitudinal-v1",
            system=system,
            instruction=_LONGITUDINAL_INSTRUCTION,
            question="\n".join(
                [
                    _LONGITUDINAL_QUESTION.format(current=current, prior=prior),
                    f"The prior report's impression: {impression}",
                    *details,
                ]
            ),
            template=template_name,
        )
    name, template = _INSTRUCTIONS[modality]
    body_text = "" if modality in {"CR", "DX"} else body
    return Prompt(
        name=name,
        system=system,
        instruction="\n".join([template.format(body=body_text), *details]),
        template=template_name,
    )
