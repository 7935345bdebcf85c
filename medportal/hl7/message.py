"""HL7 v2.5.1 ORU^R01 of a signed report or of one of its addenda, and the ACK that answers it.

One message per signature: the report's own (result status F, final) and each addendum's
(status C, corrected). A correction carries the whole report again with every addendum up to
its own, because receivers replace the earlier result with it. Sections are FT observations
with LOINC codes (the DICOM report headings, PS3.16 CID 7001); line breaks are ``\\.br\\``.
Every value passes through ``escape``, so no text can end a field, a segment or the MLLP frame.
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from medportal.communication.critical import report_critical_statements
from medportal.reporting.freezing import SignedSnapshot

ENCODING = "utf-8"
_ESCAPES = {"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "&": "\\T\\", "~": "\\R\\"}
_LINE_BREAK = "\\.br\\"

# (field of the report, LOINC code, heading) in the order a reader expects them.
SECTIONS = [
    ("technique", "55111-9", "Current imaging procedure descriptions"),
    ("comparison", "18834-2", "Radiology Comparison study"),
    ("findings", "59776-5", "Procedure findings"),
    ("impression", "19005-8", "Radiology Imaging study [Impression]"),
]
ADDENDUM = ("55107-7", "Addendum")


def escape(value: object, *, line_breaks: bool = False) -> str:
    """``value`` as the text of one HL7 component: delimiters become escape sequences, line
    breaks ``\\.br\\`` (``line_breaks``, for FT) or spaces, other control characters ``\\Xhh\\``
    (the MLLP frame bytes among them)."""
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char == "\n":
            out.append(_LINE_BREAK if line_breaks else " ")
        elif (ord(char) < 0x20 and char != "\t") or char == "\x7f":
            out.append(f"\\X{ord(char):02X}\\")
        else:
            out.append(char)
    return "".join(out)


def timestamp(moment: datetime.datetime | None) -> str:
    """HL7 DTM in the site's time zone, with its offset: ``YYYYMMDDHHMMSS+ZZZZ``."""
    if moment is None:
        return ""
    return timezone.localtime(moment).strftime("%Y%m%d%H%M%S%z")


def _segment(name: str, fields: dict[int, str]) -> str:
    """A segment from its non-empty fields by number (MSH counts its field separator as 1)."""
    first = 2 if name == "MSH" else 1
    last = max((n for n, v in fields.items() if v), default=first - 1)
    values = [fields.get(n, "") for n in range(first, last + 1)]
    return "|".join([name, *values])


def _person_name(dicom_name: str) -> str:
    """A DICOM PN (family^given^middle^prefix^suffix) as an HL7 XPN (family^given^middle^suffix^prefix)."""
    parts = (dicom_name.split("=")[0].split("^") + [""] * 5)[:5]
    family, given, middle, prefix, suffix = (escape(part.strip()) for part in parts)
    return "^".join([family, given, middle, suffix, prefix]).rstrip("^")


def _user(user, separator: str) -> str:
    """A user as HL7 XCN (``^``) or CNN (``&``, inside a component): login id, family, given."""
    if user is None:
        return ""
    parts = [escape(user.get_username()), escape(user.last_name), escape(user.first_name)]
    return separator.join(parts).rstrip(separator)


def _sex(value: str) -> str:
    value = value.strip().upper()
    return value if value in ("M", "F", "O") else "U"


def filler_order_number(signed: SignedSnapshot) -> str:
    """The accession number, which is how the EHR knows the order; MedPortal's own id without one."""
    return signed.study.accession_number or f"MP{signed.study.pk}"


def oru_r01(*, signed: SignedSnapshot, control_id: str, created_at: datetime.datetime) -> str:
    """The ORU^R01 of a signature: the report's own (``signed`` without addenda) or its last
    addendum's (``signed`` up to that addendum); segments end with CR. Everything in it comes
    from the snapshots frozen at the signatures."""
    report, study, patient = signed.report, signed.study, signed.patient
    addendum = signed.addenda[-1] if signed.addenda else None
    status = "C" if addendum is not None else "F"
    signer = addendum.signed_by if addendum is not None else report.signed_by
    signed_at = addendum.signed_at if addendum is not None else report.signed_at
    sender = escape(settings.MEDPORTAL_HL7_SENDING_APPLICATION)
    filler = f"{escape(filler_order_number(signed))}^{sender}"
    segments = [
        _segment(
            "MSH",
            {
                2: "^~\\&",
                3: sender,
                4: escape(settings.MEDPORTAL_HL7_SENDING_FACILITY),
                5: escape(settings.MEDPORTAL_HL7_RECEIVING_APPLICATION),
                6: escape(settings.MEDPORTAL_HL7_RECEIVING_FACILITY),
                7: timestamp(created_at),
                9: "ORU^R01^ORU_R01",
                10: escape(control_id),
                11: settings.MEDPORTAL_HL7_PROCESSING_ID,
                12: "2.5.1",
                18: "UNICODE UTF-8",
            },
        ),
        _segment(
            "PID",
            {
                1: "1",
                3: f"{escape(patient.patient_id)}^^^{escape(settings.MEDPORTAL_HL7_MRN_AUTHORITY)}^MR",
                5: _person_name(patient.name),
                7: patient.birth_date if re.fullmatch(r"\d{8}", patient.birth_date) else "",
                8: _sex(patient.sex),
            },
        ),
        _segment("PV1", {1: "1", 2: "U"}),  # patient class unknown: MedPortal has no visits
        _segment("ORC", {1: "RE", 3: filler, 5: "CM"}),
        _segment(
            "OBR",
            {
                1: "1",
                3: filler,
                4: "^" + escape(study.description or f"{study.modality} study".strip()),
                7: study.study_date.strftime("%Y%m%d") if study.study_date else "",
                13: escape(study.indication[:300]),
                22: timestamp(signed_at),
                24: "RAD",
                25: status,
                32: f"{_user(signer, '&')}^{timestamp(signed_at)}",
            },
        ),
        *_provenance_notes(signed),
    ]
    # A report with a critical result: every observation flagged AA (critically abnormal, HL7
    # table 0078), and the communication statement of each result as a note after the others.
    critical = report_critical_statements(report, signed_at=report.signed_at)
    first_note = sum(segment.startswith("NTE|") for segment in segments) + 1
    segments += [
        _segment("NTE", {1: str(n), 2: "L", 3: escape(text, line_breaks=True)})
        for n, text in enumerate(critical, start=first_note)
    ]
    observations = [
        (code, heading, 1, text)
        for name, code, heading in SECTIONS
        if (text := getattr(report, name).strip())
    ]
    observations += [(*ADDENDUM, a.number, f"Addendum {a.number}: {a.text}") for a in signed.addenda]
    for set_id, (code, heading, sub_id, text) in enumerate(observations, start=1):
        segments.append(
            _segment(
                "OBX",
                {
                    1: str(set_id),
                    2: "FT",
                    3: f"{code}^{escape(heading)}^LN",
                    4: str(sub_id),
                    5: escape(text, line_breaks=True),
                    8: "AA" if critical else "",
                    11: status,
                    14: timestamp(signed_at),
                    16: _user(signer, "^"),
                },
            )
        )
    return "\r".join(segments) + "\r"


def _provenance_notes(signed: SignedSnapshot) -> list[str]:
    """NTE segments: the AI provenance in one sentence, then in full (JSON) when AI drafted it."""
    notes = [signed.provenance_line]
    provenance = signed.provenance
    if provenance["ai_assisted"]:
        notes.append("AI provenance: " + json.dumps(provenance, sort_keys=True, ensure_ascii=False))
    return [
        _segment("NTE", {1: str(n), 2: "L", 3: escape(note, line_breaks=True)})
        for n, note in enumerate(notes, start=1)
    ]


# -- the answer -----------------------------------------------------------------------------


@dataclass
class Ack:
    code: str  # MSA-1: AA, AE, AR (original mode) or CA, CE, CR (enhanced mode)
    control_id: str  # MSA-2: the message it answers
    text: str = ""  # MSA-3 and the ERR segments, unescaped
    errors: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.code in ("AA", "CA")

    @property
    def rejected(self) -> bool:
        return self.code in ("AE", "AR", "CE", "CR")

    def reason(self) -> str:
        parts = [p for p in [self.text, *self.errors] if p]
        return "; ".join(dict.fromkeys(parts)) or f"The receiver answered {self.code} without saying why."


class AckError(ValueError):
    """The receiver's answer is not an HL7 ACK."""


def parse_ack(data: bytes) -> Ack:
    """The MSA (and any ERR) of an ACK; AckError when there is none."""
    text = data.decode(ENCODING, errors="replace")
    segments = [s for s in re.split(r"\r\n|\r|\n", text) if s.strip()]
    header = next((s for s in segments if s.startswith("MSH") and len(s) >= 8), None)
    if header is None:
        raise AckError(f"The receiver answered without an MSH segment: {text[:200]!r}")
    separator, encoding = header[3], header[4:8]
    fields_of = {s[:3]: s.split(separator) for s in reversed(segments)}  # first of each name
    msa = fields_of.get("MSA")
    if msa is None or len(msa) < 2 or not msa[1].strip():
        raise AckError(f"The receiver's answer has no acknowledgment code (MSA): {text[:200]!r}")
    errors = [_err_text(s.split(separator), encoding) for s in segments if s.startswith("ERR")]
    return Ack(
        code=msa[1].strip().upper(),
        control_id=unescape(msa[2], encoding) if len(msa) > 2 else "",
        text=unescape(msa[3], encoding).strip() if len(msa) > 3 else "",
        errors=[e for e in errors if e],
    )


def _err_text(fields: list[str], encoding: str) -> str:
    """What an ERR segment says: ERR-3's code and text and ERR-8's message (2.5), else ERR-1 (2.4)."""
    component, subcomponent = encoding[0], encoding[3]

    def at(n: int) -> str:
        return fields[n] if len(fields) > n else ""

    parts = [*at(3).split(component)[:2], at(8)]
    if not any(p.strip() for p in parts):  # v2.4: ERR-1 location^^^code&text
        location = at(1).split(component)
        parts = location[3].split(subcomponent)[:2] if len(location) > 3 else []
    return " ".join(unescape(p, encoding).strip() for p in parts if p.strip())


def unescape(value: str, encoding: str = "^~\\&") -> str:
    """Undo ``escape`` (for reading ACKs and in tests), with the message's own encoding characters."""
    component, repetition, escape_char, subcomponent = encoding[0], encoding[1], encoding[2], encoding[3]
    named = {"F": "|", "S": component, "T": subcomponent, "R": repetition, "E": escape_char, ".br": "\n"}
    pattern = re.compile(re.escape(escape_char) + r"(F|S|T|R|E|\.br|X[0-9A-Fa-f]*)" + re.escape(escape_char))

    def replace(match: re.Match) -> str:
        code = match.group(1)
        if code.startswith("X"):
            try:
                return bytes.fromhex(code[1:]).decode(ENCODING, errors="replace")
            except ValueError:
                return match.group(0)
        return named[code]

    return pattern.sub(replace, value)
