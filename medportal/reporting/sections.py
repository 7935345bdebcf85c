"""A report's sections, and splitting a drafted text into them by its headings."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Sections:
    technique: str = ""
    comparison: str = ""
    findings: str = ""
    impression: str = ""


_SECTION_NAMES = ("technique", "comparison", "findings", "impression")
# A heading starts a line and is followed by a colon or the end of the line: "IMPRESSION:",
# "**Findings:**", "Technique". "Impression of the heart ..." is a sentence, not a heading.
_HEADING = re.compile(
    r"^[^\w\n]*(?P<name>technique|comparison|findings?|impressions?)\b[^\w\n:]*(?::[^\w\n]*|$)",
    re.IGNORECASE | re.MULTILINE,
)


def split_sections(text: str, *, sections: tuple[str, ...] = ("Findings", "Impression")) -> Sections:
    """The sections of a drafted text, by their headings.

    Only the headings of ``sections`` split the text (Findings and Impression always; Technique and
    Comparison when the report's template has them); any other text stays where it is. Text before
    the first heading, and all of it without headings, is Findings.
    """
    wanted = {name.lower() for name in sections} | {"findings", "impression"}
    parts: dict[str, list[str]] = {name: [] for name in _SECTION_NAMES}
    current, start = "findings", 0
    for match in _HEADING.finditer(text):
        name = match["name"].lower()
        name = {"finding": "findings", "impressions": "impression"}.get(name, name)
        if name not in wanted:
            continue
        parts[current].append(text[start : match.start()])
        current, start = name, match.end()
    parts[current].append(text[start:])
    joined = {name: "\n\n".join(p.strip() for p in chunks if p.strip()) for name, chunks in parts.items()}
    return Sections(**joined)
