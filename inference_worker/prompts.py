"""Prompts, chosen by modality. Each has a version recorded with every draft."""

from __future__ import annotations

import re
from dataclasses import dataclass

SYSTEM_PROMPT = "You are an expert radiologist."

_SECTIONS = "Write the report with a FINDINGS section and an IMPRESSION section."


@dataclass(frozen=True)
class Prompt:
    name: str
    system: str
    instruction: str

    def as_record(self) -> str:
        return f"[{self.name}]\nSYSTEM: {self.system}\nUSER: {self.instruction}"


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


SUPPORTED = "chest X-rays (CR/DX), CT and MR"
_CHEST = {"", "CHEST", "THORAX", "LUNG"}


def prompt_for(*, modality: str, body_part: str = "", indication: str = "") -> Prompt:
    """The prompt for a study, or UnsupportedStudy rather than a report of the wrong kind."""
    modality = (modality or "").upper()
    if modality not in _INSTRUCTIONS:
        raise UnsupportedStudy(
            f"No AI draft: MedGemma drafts {SUPPORTED}; this study's modality is "
            f"{modality or 'not given'}. Write the report by hand."
        )
    if modality in {"CR", "DX"} and body_part.upper() not in _CHEST:
        raise UnsupportedStudy(
            f"No AI draft: of radiographs, MedGemma drafts only the chest; this one is of the "
            f"{body_part.lower()}. Write the report by hand."
        )
    name, template = _INSTRUCTIONS[modality]
    body = f" of the {body_part.lower()}" if body_part else ""
    instruction = template.format(body=body)
    if indication.strip():
        instruction += f"\nClinical indication: {prompt_safe(indication).strip()}"
    return Prompt(name=name, system=SYSTEM_PROMPT, instruction=f"{instruction}\n{_SECTIONS}")
