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


@dataclass(frozen=True)
class Prompt:
    name: str
    system: str
    instruction: str
    template: str = ""  # the report template's name, when one was used

    def as_record(self) -> str:
        template = f"; template: {self.template}" if self.template else ""
        return f"[{self.name}{template}]\nSYSTEM: {self.system}\nUSER: {self.instruction}"


_INSTRUCTIONS = {
    "CR": ("cxr-v1", "Describe this chest X-ray."),
    "DX": ("cxr-v1", "Describe this chest X-ray."),
    "CT": ("ct-slice-v1", "This is one representative axial slice of a CT study{body}. Describe it."),
    "MR": ("mr-slice-v1", "This is one representative slice of an MR study{body}. Describe it."),
}


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


def prompt_for(
    *,
    modality: str,
    body_part: str = "",
    indication: str = "",
    template_name: str = "",
    template_instruction: str = "",
    sections: Sequence[str] = DEFAULT_SECTIONS,
    radiologist_instruction: str = "",
) -> Prompt:
    """The prompt for a study, or UnsupportedStudy rather than a report of the wrong kind.

    ``template_instruction`` and ``sections`` come from the report template chosen for the
    study; ``radiologist_instruction`` is the radiologist's request for this draft. Text
    typed by people has Gemma's control tokens removed before it joins the prompt.
    """
    modality = (modality or "").upper()
    refused = scope_error(modality, body_part)
    if refused:
        raise UnsupportedStudy(refused)
    name, template = _INSTRUCTIONS[modality]
    body = f" of the {body_part.lower()}" if body_part else ""
    lines = [template.format(body=body)]
    if indication.strip():
        lines.append(f"Clinical indication: {prompt_safe(indication).strip()}")
    if template_instruction.strip():
        lines.append(prompt_safe(template_instruction).strip())
    lines.append(_sections_line(sections))
    if radiologist_instruction.strip():
        lines.append(
            f"The radiologist's request for this draft: {prompt_safe(radiologist_instruction).strip()}"
        )
    return Prompt(name=name, system=SYSTEM_PROMPT, instruction="\n".join(lines), template=template_name)
