"""Reading IHE MRRT report templates: the HTML5 format of the RSNA RadReport template library.

An MRRT template (IHE Radiology TF Supplement "Management of Radiology Report Templates",
Vol. 3 section 8.1) is an HTML5 file:

- ``<head>``: Dublin Core ``<meta name="dcterms.title" ...>``, ``dcterms.identifier`` and the like,
  and a ``<script type="text/xml">`` holding ``<template_attributes>``: coding schemes, template-level
  ``<term><code meaning= value= scheme=>`` (RadLex modality and anatomy in RadReport's templates) and
  ``<coded_content>`` whose ``<entry ORIGTXT="id">`` elements code the body element with that id
  (LOINC section codes, for example);
- ``<body>``: ``<section data-section-name="Findings">`` elements with a ``<header>``, text in
  ``<p>``, tables and lists, and fields: ``<input>`` (text, number, date, time, checkbox),
  ``<textarea>`` and ``<select>`` of ``<option>``s, each usually after its ``<label>``.

MedPortal keeps the text of the sections it has fields for (Technique, Comparison, Findings,
Impression), with each field written as a readable placeholder ("[Heart: Normal/Enlarged]") or its
default text, and the modality and body part when the template-level codes give them. It is read
with the standard library's tolerant HTML parser, twice: the body, then the coded content (whose
XML is often not well-formed: ``<code ...>`` left open). Nothing in the file is executed or fetched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

MAX_MRRT_BYTES = 1024 * 1024  # RadReport's templates are 5-100 KB

TECHNIQUE, COMPARISON, FINDINGS, IMPRESSION = "technique", "comparison", "findings", "impression"
KINDS = (TECHNIQUE, COMPARISON, FINDINGS, IMPRESSION)


class MrrtError(ValueError):
    """The file is not an MRRT template MedPortal can use; the message says why."""


@dataclass(frozen=True)
class Code:
    scheme: str
    value: str
    meaning: str


@dataclass
class MrrtSection:
    name: str
    kind: str  # one of KINDS, or "" for a section MedPortal has no field for
    text: str


@dataclass
class MrrtTemplate:
    title: str
    identifier: str
    sections: list[MrrtSection]
    # From the template-level codes: one modality, several ("projection radiography": CR or DX), none.
    modalities: tuple[str, ...] = ()
    body_part: str = ""
    codes: list[Code] = field(default_factory=list)

    def text_of(self, kind: str) -> str:
        return "\n\n".join(s.text for s in self.sections if s.kind == kind and s.text)

    def has(self, kind: str) -> bool:
        return any(s.kind == kind for s in self.sections)

    @property
    def left_out(self) -> list[str]:
        """Sections MedPortal has no field for (clinical information, history, ...)."""
        return [s.name for s in self.sections if not s.kind]


# -- what codes and names mean ------------------------------------------------------------

# Coding scheme OIDs (the designator attribute) to the names used below.
_SCHEME_OIDS = {
    "2.16.840.1.113883.6.256": "RADLEX",
    "2.16.840.1.113883.6.1": "LOINC",
    "2.16.840.1.113883.6.96": "SNOMED",
    "1.2.840.10008.2.16.4": "DCM",
}
_SCHEME_ALIASES = {"SNOMEDCT": "SNOMED", "SCT": "SNOMED", "SRT": "SNOMED", "RADLEX": "RADLEX"}

# Section codes: LOINC's (DICOM PS3.20 imaging report sections) and DICOM's report headings (CID 7001).
_SECTION_CODES = {
    ("LOINC", "55111-9"): TECHNIQUE,  # Current imaging procedure descriptions
    ("LOINC", "18834-2"): COMPARISON,  # Radiology Comparison study
    ("LOINC", "59776-5"): FINDINGS,  # Procedure findings
    ("LOINC", "18782-3"): FINDINGS,  # Radiology Study observation
    ("LOINC", "19005-8"): IMPRESSION,  # Radiology Imaging study [Impression]
    ("DCM", "121064"): TECHNIQUE,  # Current Procedure Descriptions
    ("DCM", "121070"): FINDINGS,
    ("DCM", "121072"): IMPRESSION,
    ("DCM", "121076"): IMPRESSION,  # Conclusions
}
_SECTION_NAMES = {
    TECHNIQUE: {"technique", "procedure", "procedure description", "protocol", "technique and protocol"},
    COMPARISON: {"comparison", "comparisons", "comparison study", "comparison studies", "prior studies"},
    FINDINGS: {"findings", "finding"},
    IMPRESSION: {"impression", "impressions", "conclusion", "conclusions"},
}

_DICOM_MODALITIES = {"CR", "DX", "CT", "MR", "US", "MG", "NM", "PT", "XA", "RF", "OT", "IO", "PX"}
_MODALITY_MEANINGS = {
    "computed tomography": ("CT",),
    "ct": ("CT",),
    "magnetic resonance imaging": ("MR",),
    "magnetic resonance": ("MR",),
    "mri": ("MR",),
    "projection radiography": ("CR", "DX"),
    "radiography": ("CR", "DX"),
    "x-ray": ("CR", "DX"),
    "computed radiography": ("CR",),
    "digital radiography": ("DX",),
    "ultrasound": ("US",),
    "ultrasonography": ("US",),
    "mammography": ("MG",),
    "nuclear medicine": ("NM",),
    "positron emission tomography": ("PT",),
    "fluoroscopy": ("RF",),
}
_RADLEX_MODALITIES = {"RID10345": ("CR", "DX")}  # projection radiography

# Anatomy meanings to DICOM Body Part Examined values.
_BODY_PART_MEANINGS = {
    "thorax": "CHEST",
    "chest": "CHEST",
    "lung": "CHEST",
    "lungs": "CHEST",
    "head": "HEAD",
    "brain": "BRAIN",
    "neck": "NECK",
    "abdomen": "ABDOMEN",
    "pelvis": "PELVIS",
    "abdomen and pelvis": "ABDOMENPELVIS",
    "spine": "SPINE",
    "cervical spine": "CSPINE",
    "thoracic spine": "TSPINE",
    "lumbar spine": "LSPINE",
    "heart": "HEART",
    "breast": "BREAST",
    "knee": "KNEE",
    "shoulder": "SHOULDER",
    "hip": "HIP",
}
_RADLEX_BODY_PARTS = {"RID1243": "CHEST"}  # thorax


def _section_kind_by_name(name: str) -> str:
    key = re.sub(r"\s+", " ", name).strip().strip(":").strip().lower()
    return next((kind for kind, names in _SECTION_NAMES.items() if key in names), "")


def _modalities(codes: list[Code]) -> tuple[str, ...]:
    for code in codes:
        if code.scheme == "DCM" and code.value.upper() in _DICOM_MODALITIES:
            return (code.value.upper(),)
        found = _RADLEX_MODALITIES.get(code.value.upper()) or _MODALITY_MEANINGS.get(code.meaning.lower())
        if found:
            return found
    return ()


def _body_part(codes: list[Code]) -> str:
    for code in codes:
        found = _RADLEX_BODY_PARTS.get(code.value.upper()) or _BODY_PART_MEANINGS.get(code.meaning.lower())
        if found:
            return found
    return ""


# -- the coded content --------------------------------------------------------------------


class _CodedContent(HTMLParser):
    """``<template_attributes>``: template-level codes, and the codes of each ORIGTXT id."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.schemes: dict[str, str] = {}  # scheme name as written -> canonical
        self.template_codes: list[Code] = []
        self.entries: dict[str, list[Code]] = {}
        self._entry: str | None = None

    def scheme(self, name: str) -> str:
        upper = name.strip().upper()
        return self.schemes.get(upper) or _SCHEME_ALIASES.get(upper, upper)

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "coding_scheme" and a.get("name"):
            canonical = _SCHEME_OIDS.get(a.get("designator", "").strip())
            if canonical:
                self.schemes[a["name"].strip().upper()] = canonical
        elif tag == "entry":
            self._entry = a.get("origtxt", "").strip()
        elif tag == "code":
            code = Code(
                self.scheme(a.get("scheme", "")), a.get("value", "").strip(), a.get("meaning", "").strip()
            )
            if self._entry is None:
                self.template_codes.append(code)
            else:
                self.entries.setdefault(self._entry, []).append(code)

    def handle_endtag(self, tag):
        if tag == "entry":
            self._entry = None


# -- the body -----------------------------------------------------------------------------

_BLOCKS = {
    "p", "div", "br", "li", "tr", "table", "ul", "ol", "dl", "dt", "dd", "blockquote", "pre", "hr",
    "h1", "h2", "h3", "h4", "h5", "h6", "header", "section", "article", "footer",
}  # fmt: skip
_CELLS = {"td", "th"}
_IGNORED_INPUTS = {"hidden", "submit", "button", "reset", "image", "file", "password"}
_LONG_CHOICE = 40  # options this long are sentences: the choices are written by their values


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def _label_words(label: str) -> str:
    return label.strip().rstrip(":").strip()


def _choices(options: list[tuple[str, str]]) -> list[str]:
    """A select's choices, short: by their values when the option texts are whole sentences
    ("Clear", not "The lungs are clear."). A dash or blank option ("not stated") is left out."""
    by_value = all(value for _, value in options) and any(len(text) > _LONG_CHOICE for text, _ in options)
    choices = []
    for text, value in options:
        choice = value if by_value or not text else text
        if re.search(r"\w", choice) and choice not in choices:
            choices.append(choice)
    return choices


def _field_name(a: dict) -> str:
    """What names a field that has no label: its title, placeholder or name attribute."""
    return (a.get("title") or a.get("placeholder") or a.get("name") or "").strip()


def _placeholder(label: str, detail: str = "") -> str:
    words = _label_words(label)
    if detail:
        return f"[{words}: {detail}]" if words else f"[{detail}]"
    return f"[{words}]" if words else "[...]"


@dataclass
class _Section:
    name: str
    element_id: str
    ids: set[str] = field(default_factory=set)
    parts: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)

    def text(self) -> str:
        lines = (re.sub(r"[ \t]+", " ", line).strip() for line in "".join(self.parts).split("\n"))
        return "\n".join(line for line in lines if line)


class _Body(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.is_html = False
        self.meta: dict[str, str] = {}
        self.title: list[str] = []
        self.xml_scripts: list[str] = []
        self.sections: list[_Section] = []
        self._section: _Section | None = None
        self._depth = 0  # <section> nesting inside the current top-level section
        self._in: str | None = None  # "title", "xml", "skip" (script, style), "header"
        self._label: list[str] | None = None  # the text of the <label> being read
        self._pending_label = ""  # a label read, waiting for its field
        self._select: dict | None = None
        self._option: dict | None = None
        self._textarea: dict | None = None

    # Output ---------------------------------------------------------------------------

    def _write(self, text: str) -> None:
        if self._section is not None:
            self._section.parts.append(text)

    def _flush_label(self) -> None:
        """A label that no field took is text like any other."""
        if self._pending_label:
            label, self._pending_label = self._pending_label, ""
            self._write(label + " ")

    def _newline(self) -> None:
        self._flush_label()
        self._write("\n")

    def _take_label(self) -> str:
        """The label of the field starting here: the one it sits in, or the one just before it."""
        if self._label is not None:
            label = _collapse("".join(self._label)).strip()
            self._label = []
            return label
        label, self._pending_label = self._pending_label, ""
        return label

    def _write_field(self, label: str, name: str, *, value: str = "", detail: str = "") -> None:
        """A field's default text after its label, else a placeholder named by its label (or name)."""
        if value:
            self._write(f"{label} {value} " if label else f"{value} ")
        else:
            self._write(_placeholder(label or name, detail) + " ")

    # Tags -----------------------------------------------------------------------------

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)  # <input/>, <br/>: void elements, no end tag follows

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag in ("html", "head", "body", "section"):
            self.is_html = True
        if self._in is not None:
            return  # inside <title>, <script>, <style> or a section's own <header>
        if tag == "meta" and a.get("name"):
            self.meta.setdefault(a["name"].strip().lower(), a.get("content", "").strip())
        elif tag == "title" and self._section is None:
            self._in = "title"
        elif tag in ("script", "style"):
            is_xml = tag == "script" and a.get("type", "").strip().lower() == "text/xml"
            self._in = "xml" if is_xml else "skip"
            if is_xml:
                self.xml_scripts.append("")
        elif tag == "section":
            self._start_section(a)
        elif self._section is not None:
            self._body_tag(tag, a)

    def _body_tag(self, tag: str, a: dict) -> None:
        if a.get("id"):
            self._section.ids.add(a["id"].strip())
        if tag == "header" and self._depth == 1:
            self._in = "header"  # the section's own heading: it is the section's name
        elif tag in _BLOCKS:
            self._newline()
            if tag == "li":
                self._write("- ")
        elif tag in _CELLS:
            self._write(" ")
        elif tag == "label":
            self._flush_label()
            self._label = []
        elif tag == "input":
            self._input(a)
        elif tag == "textarea":
            self._textarea = {"label": self._take_label(), "name": _field_name(a), "text": []}
        elif tag == "select":
            self._select = {"label": self._take_label(), "name": _field_name(a), "options": []}
        elif tag == "option" and self._select is not None:
            self._end_option()
            self._option = {"value": a.get("value", ""), "text": []}

    def handle_endtag(self, tag):
        ends = {"title": ("title",), "script": ("xml", "skip"), "style": ("skip",), "header": ("header",)}
        if self._in is not None:
            if tag in ends and self._in in ends[tag]:
                self._in = None
            return
        if self._section is None:
            return
        if tag == "section":
            self._depth -= 1
            self._newline()
            if self._depth == 0:
                self._end_section()
        elif tag in _BLOCKS:
            self._newline()
        elif tag == "label" and self._label is not None:
            rest = _collapse("".join(self._label)).strip()
            self._label = None
            if rest:
                self._flush_label()
                self._pending_label = rest
        elif tag == "textarea" and self._textarea is not None:
            field, self._textarea = self._textarea, None
            text = "\n".join(line.strip() for line in "".join(field["text"]).strip().splitlines())
            self._write_field(field["label"], field["name"], value=text)
        elif tag == "option":
            self._end_option()
        elif tag == "select" and self._select is not None:
            self._end_option()
            field, self._select = self._select, None
            self._write_field(field["label"], field["name"], detail="/".join(_choices(field["options"])))

    def handle_data(self, data):
        if self._in == "title":
            self.title.append(data)
        elif self._in == "xml":
            self.xml_scripts[-1] += data
        elif self._in == "header":
            if self._section is not None:
                self._section.header.append(data)
        elif self._in == "skip" or self._section is None:
            return
        elif self._textarea is not None:
            self._textarea["text"].append(data)
        elif self._option is not None:
            self._option["text"].append(data)
        elif self._select is not None:
            return  # whitespace between options
        elif self._label is not None:
            self._label.append(data)
        else:
            text = _collapse(data)
            if text.strip():
                self._flush_label()
            self._write(text)

    # Sections and fields ---------------------------------------------------------------

    def _start_section(self, a: dict) -> None:
        if self._section is not None:
            self._depth += 1
            if a.get("id"):
                self._section.ids.add(a["id"].strip())
            self._newline()
            return
        element_id = a.get("id", "").strip()
        self._section = _Section(name=a.get("data-section-name", "").strip(), element_id=element_id)
        if element_id:
            self._section.ids.add(element_id)
        self._depth = 1

    def _end_section(self) -> None:
        # Fields left open (HTML lets </option> go; a broken file may leave out more) end here.
        for tag in ("textarea", "select", "label"):
            self.handle_endtag(tag)
        section = self._section
        self._flush_label()
        section.name = (section.name or _collapse("".join(section.header))).strip().rstrip(":").strip()
        self.sections.append(section)
        self._section, self._label, self._select, self._option, self._textarea = None, None, None, None, None

    def _input(self, a: dict) -> None:
        kind = (a.get("type") or a.get("data-field-type") or "text").strip().lower()
        if kind in _IGNORED_INPUTS:
            return
        label, name = self._take_label(), _field_name(a)
        value = _collapse(a.get("value", "")).strip()
        if kind in ("checkbox", "radio", "boolean"):
            self._write_field(label, name, detail="yes/no")
        elif kind in ("date", "time", "number"):
            self._write_field(label, name, value=value, detail=kind)
        else:
            self._write_field(label, name, value=value)

    def _end_option(self) -> None:
        option, self._option = self._option, None
        if option is not None and self._select is not None:
            text = _collapse("".join(option["text"])).strip()
            self._select["options"].append((text, option["value"].strip()))

    def close(self):
        super().close()
        if self._section is not None:  # an unclosed <section> ends with the file
            self._depth, self._in = 0, None
            self._end_section()


# -- reading a file -----------------------------------------------------------------------


def _decode(data: bytes) -> str:
    if len(data) > MAX_MRRT_BYTES:
        raise MrrtError(
            f"The file is {len(data) / 1024 / 1024:.1f} MB; an MRRT template may be at most "
            f"{MAX_MRRT_BYTES // 1024} KB."
        )
    if not data.strip():
        raise MrrtError("The file is empty.")
    if b"\x00" in data:
        raise MrrtError("This is not an MRRT template: the file is binary, not HTML text.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MrrtError(
            "This is not an MRRT template: MRRT files are UTF-8 text, and this one is not."
        ) from None


def _coded_content(scripts: list[str]) -> _CodedContent:
    reader = _CodedContent()
    for script in scripts:
        # RadReport wraps the XML in an HTML comment; read what is inside.
        reader.feed(script.replace("<!--", "").replace("-->", ""))
    reader.close()
    return reader


def parse_mrrt(data: bytes) -> MrrtTemplate:
    """Read an MRRT template file. MrrtError says what is wrong with a file that cannot be used."""
    body = _Body()
    body.feed(_decode(data))
    body.close()
    if not body.is_html:
        raise MrrtError(
            "This is not an MRRT template: it is not an HTML file. IHE MRRT templates (such as "
            "RSNA RadReport's) are HTML5 files with <section data-section-name=...> elements."
        )
    coded = _coded_content(body.xml_scripts)
    sections = []
    for found in body.sections:
        codes = [
            *coded.entries.get(found.element_id, []),
            *(c for i in sorted(found.ids - {found.element_id}) for c in coded.entries.get(i, [])),
        ]
        kind = next(
            (_SECTION_CODES[(c.scheme, c.value)] for c in codes if (c.scheme, c.value) in _SECTION_CODES), ""
        )
        sections.append(
            MrrtSection(
                name=found.name or "(unnamed)",
                kind=kind or _section_kind_by_name(found.name),
                text=found.text(),
            )
        )
    if not sections:
        raise MrrtError(
            "This template has no report sections: an MRRT template's body holds "
            '<section data-section-name="Findings"> (and Impression, ...) elements; this file has none.'
        )
    if not any(s.kind in (FINDINGS, IMPRESSION) for s in sections):
        names = ", ".join(s.name for s in sections)
        raise MrrtError(
            f"No Findings or Impression section: this template's sections are {names}. MedPortal needs "
            "at least one of them (by its name, or coded with LOINC 59776-5 or 19005-8)."
        )
    title = body.meta.get("dcterms.title") or _collapse("".join(body.title)).strip()
    identifier = body.meta.get("dcterms.identifier", "")
    return MrrtTemplate(
        title=(title or identifier or "Imported MRRT template")[:200],
        identifier=identifier[:200],
        sections=sections,
        modalities=_modalities(coded.template_codes),
        body_part=_body_part(coded.template_codes),
        codes=coded.template_codes,
    )
