"""The body part a study is drafted as, and a guard that never guesses it.

A study's Body Part Examined (``Study.body_part``: from the first image's header at ingest,
or set on the study page) is used as it is. When it is blank, the body part is read only
from the header's own words, Study Description, Series Description and Protocol Name, by
``BODY_PART_WORDS``: every whole word of those texts that the table names, and they must all
name the same body part. No word, or words naming two body parts, and the draft is refused
with ``BodyPartUnknown``, whose message says how to fix it. Nothing is assumed from the
modality: a radiograph without a body part is not a chest X-ray, and neither is a PNG.

A projection is not a body part: "PA", "AP" and "LAT" name how a radiograph was taken, of a
chest as well as of a hand or a skull, so they are not in the table.

No Django imports: the worker and the web process both read it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Whole words (upper case) of a description or protocol name, and the Body Part Examined
# (DICOM PS3.16 CID 4031 terms) each names.
BODY_PART_WORDS: dict[str, str] = {
    **dict.fromkeys(["CHEST", "THORAX", "THORACIC", "LUNG", "LUNGS", "CXR", "PULMONARY"], "CHEST"),
    **dict.fromkeys(
        ["ABDOMEN", "ABDOMINAL", "ABD", "LIVER", "PANCREAS", "RENAL", "KIDNEY", "KIDNEYS"], "ABDOMEN"
    ),
    **dict.fromkeys(["PELVIS", "PELVIC"], "PELVIS"),
    **dict.fromkeys(["HEAD", "BRAIN", "SKULL", "CRANIAL", "CRANIUM", "CEREBRAL"], "HEAD"),
    **dict.fromkeys(["NECK", "CERVICAL"], "NECK"),
    **dict.fromkeys(["SPINE", "SPINAL", "LUMBAR", "CSPINE", "TSPINE", "LSPINE"], "SPINE"),
    **dict.fromkeys(["SHOULDER", "SHOULDERS"], "SHOULDER"),
    **dict.fromkeys(["HUMERUS"], "HUMERUS"),
    **dict.fromkeys(["ELBOW", "ELBOWS"], "ELBOW"),
    **dict.fromkeys(["FOREARM", "RADIUS", "ULNA"], "FOREARM"),
    **dict.fromkeys(["WRIST", "WRISTS"], "WRIST"),
    **dict.fromkeys(["HAND", "HANDS", "FINGER", "FINGERS"], "HAND"),
    **dict.fromkeys(["HIP", "HIPS"], "HIP"),
    **dict.fromkeys(["FEMUR", "THIGH"], "FEMUR"),
    **dict.fromkeys(["KNEE", "KNEES", "PATELLA"], "KNEE"),
    **dict.fromkeys(["TIBIA", "FIBULA", "LEG"], "LEG"),
    **dict.fromkeys(["ANKLE", "ANKLES"], "ANKLE"),
    **dict.fromkeys(["FOOT", "FEET", "TOE", "TOES", "CALCANEUS"], "FOOT"),
    **dict.fromkeys(["BREAST", "MAMMO", "MAMMOGRAM"], "BREAST"),
}

HOW_TO_FIX = "Set the body part on the study page, then draft."


class BodyPartUnknown(Exception):
    """The study's body part is not known and cannot be read from its header's words."""


def body_parts_named(texts: Iterable[str]) -> list[str]:
    """The body parts ``texts`` name by the table, in order of first mention, each once."""
    named: list[str] = []
    for text in texts:
        for word in re.findall(r"[A-Z0-9]+", (text or "").upper()):
            part = BODY_PART_WORDS.get(word)
            if part and part not in named:
                named.append(part)
    return named


def body_part_resolve(*, body_part: str, texts: Iterable[str]) -> tuple[str, str]:
    """The body part to draft as and where it came from ("header" or "description"), or
    ``BodyPartUnknown`` with the reason and how to fix it."""
    if (body_part or "").strip():
        return body_part.strip().upper(), "header"
    texts = [t for t in texts if (t or "").strip()]
    named = body_parts_named(texts)
    if len(named) == 1:
        return named[0], "description"
    if not named:
        said = f" ({'; '.join(repr(t) for t in texts)})" if texts else ""
        raise BodyPartUnknown(
            "No AI draft: the study has no body part (Body Part Examined is empty) and its "
            f"descriptions name none{said}. {HOW_TO_FIX}"
        )
    raise BodyPartUnknown(
        "No AI draft: the study has no body part (Body Part Examined is empty) and its "
        f"descriptions name several ({', '.join(p.lower() for p in named)}). {HOW_TO_FIX}"
    )


def body_part_refusal(*, body_part: str, texts: Iterable[str]) -> str | None:
    """Why a draft would be refused for want of a body part, or None: for the study page."""
    try:
        body_part_resolve(body_part=body_part, texts=texts)
    except BodyPartUnknown as exc:
        return str(exc)
    return None


def study_texts(study) -> list[str]:
    """The header words the database keeps for ``study``: its description and its series'
    (the worker adds each series' Protocol Name, read from the first image's header)."""
    return [
        study.description,
        *study.series.order_by("series_number", "id").values_list("description", flat=True),
    ]
