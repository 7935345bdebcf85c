"""The proofread before a sign-off: checks of the report's text against itself and its study.

``RULES`` is the one table: each rule's code, what it is about, and the function that looks.
A rule says what it found in words a radiologist can act on, and which field to fix; it never
changes the text. When Sign is pressed the sign views call ``sign_gate``: a finding not
answered with "sign anyway" stops the signature and is shown next to the button; every
finding shown and every choice ("fix" or "sign anyway") goes into the audit trail.
No model is involved: these are plain reads of the words.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from medportal.audit.models import Action
from medportal.reporting.auditing import report_audit
from medportal.reporting.models import Report, ReportVersion


@dataclass(frozen=True)
class Issue:
    code: str
    message: str
    field: str  # the editor field to fix: "findings" or "impression"


@dataclass(frozen=True)
class ReportText:
    """What the rules read: the saved text, and the facts of the study and the AI draft."""

    findings: str
    impression: str
    study_sides: frozenset[str]  # "left", "right": from the study's description, series and header
    patient_sex: str  # "M", "F" or ""
    ai_text: tuple[str, str] | None  # the AI draft's (findings, impression), if there is one
    seconds_since_draft: float | None  # since the AI draft was written or the study claimed


_WORD_SIDE = re.compile(r"\b(left|right)\b", re.IGNORECASE)
_NEGATION = re.compile(r"\b(no|not|without|negative for|free of|resolved)\b", re.IGNORECASE)


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.;!?])\s+|\n+", text) if s.strip()]


def _sides(text: str) -> set[str]:
    return {m.lower() for m in _WORD_SIDE.findall(text)}


def _normalised(text: str) -> str:
    return " ".join(text.split())


# -- the rules --------------------------------------------------------------------------------


def laterality_against_study(text: ReportText) -> Issue | None:
    if len(text.study_sides) != 1:
        return None  # no side, or both: nothing to hold the words against
    (side,) = text.study_sides
    other = "right" if side == "left" else "left"
    for field, words in (("findings", text.findings), ("impression", text.impression)):
        if other in _sides(words):
            return Issue(
                "laterality_study",
                f"The study is of the {side.upper()} side, but the {field.title()} say “{other}”.",
                field,
            )
    return None


def laterality_between_sections(text: ReportText) -> Issue | None:
    in_findings, in_impression = _sides(text.findings), _sides(text.impression)
    if not text.findings.strip() or not in_impression:
        return None
    missing = sorted(in_impression - in_findings)
    if not missing:
        return None
    return Issue(
        "laterality_sections",
        f"The Impression says “{missing[0]}”, but the Findings never do"
        + (f" (they say “{sorted(in_findings)[0]}”)." if in_findings else "."),
        "impression",
    )


# Organs only one sex has; "cervix" alone (not "cervical", which is also the spine).
_SEX_ORGANS = {
    "M": re.compile(
        r"\b(prostat\w*|testis|testes|testic\w*|scrot\w*|seminal vesicles?|epididym\w*|penis|penile)\b",
        re.IGNORECASE,
    ),
    "F": re.compile(
        r"\b(uterus|uterine|ovary|ovaries|ovarian|endometri\w*|fallopian|cervix|vagina\w*|adnex\w*)\b",
        re.IGNORECASE,
    ),
}
_SEX_NAMES = {"M": "male", "F": "female"}


def sex_specific_organs(text: ReportText) -> Issue | None:
    sex = text.patient_sex
    if sex not in _SEX_NAMES:
        return None
    other = "F" if sex == "M" else "M"
    for field, words in (("findings", text.findings), ("impression", text.impression)):
        match = _SEX_ORGANS[other].search(words)
        if match:
            return Issue(
                "sex_organ",
                f"The {field.title()} name “{match.group(0)}”, but the patient's sex is "
                f"{_SEX_NAMES[sex]} (Patient's Sex {sex}).",
                field,
            )
    return None


# MRRT and template fields ("[Heart size: normal/enlarged]"), blanks and marker words.
_PLACEHOLDER = re.compile(r"\[[^\]\n]{1,120}\]|_{3,}|\bX{3,}\b|\?{3,}|<[^<>\n]{1,60}>|\{\{.*?\}\}")


def template_placeholders(text: ReportText) -> Issue | None:
    for field, words in (("findings", text.findings), ("impression", text.impression)):
        match = _PLACEHOLDER.search(words)
        if match:
            return Issue(
                "placeholder",
                f"A template placeholder is left in the {field.title()}: “{match.group(0)}”.",
                field,
            )
    return None


def empty_impression(text: ReportText) -> Issue | None:
    if text.impression.strip():
        return None
    return Issue("empty_impression", "The Impression is empty.", "impression")


# Findings a report names; each pattern matches the word's forms (nodule, nodules, nodular).
# Things seen, not diagnoses drawn from them: "consolidation" in the Findings may well be
# "pneumonia" in the Impression.
FINDING_TERMS = {
    "nodule": r"nodul\w*",
    "mass": r"mass(?:es)?",
    "effusion": r"effusions?",
    "pneumothorax": r"pneumothora\w*",
    "consolidation": r"consolidat\w*",
    "atelectasis": r"atelecta\w*",
    "fracture": r"fractur\w*",
    "dislocation": r"dislocat\w*",
    "haemorrhage": r"ha?emorrha\w*|bleed\w*",
    "infarct": r"infarct\w*",
    "aneurysm": r"aneurysm\w*",
    "embolism": r"embol\w*",
    "oedema": r"o?edema\w*",
    "cardiomegaly": r"cardiomegal\w*",
    "lesion": r"lesions?",
    "cyst": r"cyst\w*",
    "calculus": r"calcul\w*|stones?",
    "hernia": r"hernia\w*",
    "abscess": r"abscess\w*",
    "tumour": r"tumou?r\w*|neoplas\w*",
    "metastasis": r"metasta\w*",
    "lymphadenopathy": r"lymphadenopath\w*",
    "thrombus": r"thromb\w*",
    "stenosis": r"stenos\w*",
    "obstruction": r"obstruct\w*",
    "opacity": r"opacit\w*",
    "emphysema": r"emphysem\w*",
}
_FINDING_PATTERNS = {name: re.compile(rf"\b(?:{p})\b", re.IGNORECASE) for name, p in FINDING_TERMS.items()}


def _named(text: str, pattern: re.Pattern) -> bool:
    """Named as present: in a sentence where no negation comes before it ("No effusion.")."""
    for sentence in _sentences(text):
        match = pattern.search(sentence)
        if match and not _NEGATION.search(sentence[: match.start()]):
            return True
    return False


def impression_finding_not_in_findings(text: ReportText) -> Issue | None:
    if not text.findings.strip():
        return None
    for name, pattern in _FINDING_PATTERNS.items():
        if _named(text.impression, pattern) and not pattern.search(text.findings):
            return Issue(
                "impression_only_finding",
                f"The Impression names a {name} that the Findings do not describe.",
                "impression",
            )
    return None


_MEASUREMENT = re.compile(
    r"(?<![\w.])(\d+(?:\.\d+)?)(?:\s*(?:x|×|by)\s*\d+(?:\.\d+)?)*\s*(mm|cm)\b", re.IGNORECASE
)


def _measurements(text: str) -> dict[float, str]:
    """Each measurement's first number in millimetres, with the words as written."""
    found = {}
    for match in _MEASUREMENT.finditer(text):
        value = float(match.group(1)) * (10 if match.group(2).lower() == "cm" else 1)
        found.setdefault(round(value, 2), match.group(0))
    return found


def measurements_between_sections(text: ReportText) -> Issue | None:
    in_findings = _measurements(text.findings)
    if not in_findings:
        return None
    for value, written in _measurements(text.impression).items():
        if value not in in_findings:
            return Issue(
                "measurement_mismatch",
                f"The Impression gives “{written}”, a size the Findings do not give "
                f"(they give {', '.join(f'“{w}”' for w in in_findings.values())}).",
                "impression",
            )
    return None


def ai_draft_signed_unchanged(text: ReportText) -> Issue | None:
    if text.ai_text is None or text.seconds_since_draft is None:
        return None
    limit = settings.MEDPORTAL_PROOFREAD_UNCHANGED_SECONDS
    if text.seconds_since_draft >= limit:
        return None
    findings, impression = text.ai_text
    if (_normalised(findings), _normalised(impression)) != (
        _normalised(text.findings),
        _normalised(text.impression),
    ):
        return None
    return Issue(
        "unchanged_ai_draft",
        f"This is the AI draft unchanged, {int(text.seconds_since_draft)} s after it was written "
        f"(less than {limit} s): read it before you sign.",
        "findings",
    )


# The table: (code, what it checks, the check). Every rule is tested both ways
# (tests/reporting/test_proofread.py).
RULES: list[tuple[str, str, Callable[[ReportText], Issue | None]]] = [
    ("laterality_study", "Left/right words against the study's laterality", laterality_against_study),
    ("laterality_sections", "Left/right in the Impression against the Findings", laterality_between_sections),
    ("sex_organ", "Sex-specific organs against Patient's Sex", sex_specific_organs),
    ("placeholder", "Template placeholders left in", template_placeholders),
    ("empty_impression", "An empty Impression", empty_impression),
    (
        "impression_only_finding",
        "A finding in the Impression but not in the Findings",
        impression_finding_not_in_findings,
    ),
    (
        "measurement_mismatch",
        "Sizes that differ between Findings and Impression",
        measurements_between_sections,
    ),
    ("unchanged_ai_draft", "The AI draft signed unchanged, quickly", ai_draft_signed_unchanged),
]
RULE_CODES = frozenset(code for code, _, _ in RULES)


def text_proofread(text: ReportText) -> list[Issue]:
    """Every rule's finding on ``text``, in the table's order."""
    return [issue for _, _, check in RULES if (issue := check(text)) is not None]


# -- the study's side of it -------------------------------------------------------------------

_DESCRIPTION_SIDE = re.compile(r"\b(left|right|lt|rt)\b", re.IGNORECASE)
_DICOM_SIDES = {"L": "left", "R": "right"}


def study_sides(study) -> frozenset[str]:
    """The sides a study is of: DICOM Laterality / Image Laterality of each series' first
    instance, and LEFT/RIGHT (LT/RT) in the study's and series' descriptions and body part.
    Bilateral studies ("B") and studies of both sides give both."""
    import pydicom

    from medportal.imaging.models import Instance
    from medportal.imaging.storage import blob_read

    words = [study.description, study.body_part]
    sides: set[str] = set()
    for series in study.series.all()[:20]:
        words += [series.description, series.body_part]
        first = series.instances.filter(content_type=Instance.DICOM).first()
        if first is None:
            continue
        try:
            ds = pydicom.dcmread(io.BytesIO(blob_read(first.sha256)), stop_before_pixels=True)
        except Exception:  # an unreadable header says nothing about the side
            continue
        for keyword in ("Laterality", "ImageLaterality"):
            value = str(ds.get(keyword, "") or "").strip().upper()
            if value == "B":
                sides |= {"left", "right"}
            elif value in _DICOM_SIDES:
                sides.add(_DICOM_SIDES[value])
    for match in _DESCRIPTION_SIDE.findall(" ".join(w for w in words if w)):
        sides.add({"lt": "left", "rt": "right"}.get(match.lower(), match.lower()))
    return frozenset(sides)


def report_text(report: Report) -> ReportText:
    """The saved text of ``report`` and the facts the rules hold it against."""
    study = report.study
    ai = (
        ReportVersion.objects.filter(report=report, source=ReportVersion.AI).order_by("-number").first()
        if report.model_id
        else None
    )
    seconds = None
    if ai is not None:
        since = max(filter(None, [ai.created_at, report.assigned_at]))
        seconds = (timezone.now() - since).total_seconds()
    return ReportText(
        findings=report.findings,
        impression=report.impression,
        study_sides=study_sides(study),
        patient_sex=(study.patient.sex or "").strip().upper()[:1],
        ai_text=(ai.findings, ai.impression) if ai is not None else None,
        seconds_since_draft=seconds,
    )


def report_proofread(*, report: Report) -> list[Issue]:
    """The proofread of ``report``'s saved text."""
    return text_proofread(report_text(report))


def sign_gate(*, report: Report, user, sign_anyway: list[str], request=None) -> list[Issue]:
    """Proofread before a signature. Returns the findings not answered with "sign anyway"
    (the signature must wait); an empty list lets it go on. Both are audited."""
    issues = report_proofread(report=report)
    if not issues:
        return []
    accepted = [issue for issue in issues if issue.code in sign_anyway]
    waiting = [issue for issue in issues if issue.code not in sign_anyway]
    if waiting:
        report_audit(
            report,
            "Proofread before sign-off: findings shown",
            action=Action.READ,
            request=request,
            user=user,
            detail={"issues": [{"rule": i.code, "message": i.message} for i in issues]},
        )
        return waiting
    report_audit(
        report,
        "Proofread before sign-off: sign anyway chosen",
        action=Action.UPDATE,
        request=request,
        user=user,
        detail={"issues": [{"rule": i.code, "message": i.message} for i in accepted]},
    )
    return []


def proofread_fix_record(*, report: Report, user, rule: str, request=None) -> None:
    """The radiologist chose "fix" for a finding: recorded, the text is theirs to change."""
    if rule not in RULE_CODES:
        raise ValueError(f"There is no proofread rule {rule!r}.")
    report_audit(
        report,
        "Proofread before sign-off: fix chosen",
        action=Action.READ,
        request=request,
        user=user,
        detail={"rule": rule},
    )
