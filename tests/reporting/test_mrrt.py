"""Reading IHE MRRT templates: the three sample files in data/ (written for these tests in the
shapes RadReport and the DRG publish), and files that must be refused with a reason."""

from pathlib import Path

import pytest

from medportal.reporting.report_templates.mrrt import MAX_MRRT_BYTES, MrrtError, parse_mrrt

DATA = Path(__file__).parent / "data"


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


def test_a_radreport_style_chest_template_gives_its_sections_fields_and_codes():
    template = parse_mrrt(sample("mrrt_chest_radiograph.html"))

    assert template.title == "Chest radiograph, 2 views"
    assert template.identifier == "urn:medportal:test:mrrt:cxr-2v"
    # RadLex "projection radiography" says radiograph, not which of CR and DX; "thorax" is the chest.
    assert template.modalities == ("CR", "DX")
    assert template.body_part == "CHEST"
    assert [(s.name, s.kind) for s in template.sections] == [
        ("Clinical information", ""),
        ("Procedure", "technique"),
        ("Comparison", "comparison"),
        ("Findings", "findings"),
        ("Impression", "impression"),
    ]
    assert template.left_out == ["Clinical information"]
    assert template.text_of("technique") == "PA and lateral views of the chest."
    assert template.text_of("comparison") == "None."
    # Each field is a placeholder named by its label; options that are sentences go by their values.
    assert template.text_of("findings") == (
        "[Lungs: Clear/Focal opacity/Edema]\n"
        "[Pleura: No pleural effusion or pneumothorax./Pleural effusion./Pneumothorax.]\n"
        "[Heart size: normal/enlarged]\n"
        "Other: No acute osseous abnormality."
    )
    assert template.text_of("impression") == "No acute cardiopulmonary abnormality."


def test_section_codes_beat_section_names_and_fields_of_every_kind_are_readable():
    template = parse_mrrt(sample("mrrt_ct_head.html"))

    assert (template.modalities, template.body_part) == (("CT",), "HEAD")
    # "Observations" and "Summary" are Findings and Impression by their LOINC codes.
    assert [(s.name, s.kind) for s in template.sections] == [
        ("Technique", "technique"),
        ("Comparison", "comparison"),
        ("Observations", "findings"),
        ("Summary", "impression"),
    ]
    assert template.text_of("technique") == (
        "Axial CT images of the head were obtained without intravenous contrast.\n[CTDIvol: number] mGy"
    )
    assert template.text_of("comparison") == "[Prior CT head of: date]"
    findings = template.text_of("findings")
    assert findings.splitlines() == [
        "Brain",
        "[Intracranial hemorrhage: none/present]",  # the "—" option (not stated) is no choice
        "[Midline shift: yes/no]",
        "Gray-white matter differentiation is preserved. The ventricles are normal in size.",
        "Skull and soft tissues",
        "- No calvarial fracture.",
        "- The visualized paranasal sinuses and mastoid air cells are clear.",
    ]
    assert "section { margin" not in findings  # the <style> is not text
    assert template.text_of("impression") == "No acute intracranial abnormality."


def test_a_template_without_codes_keeps_its_text_and_leaves_modality_and_body_part_open():
    template = parse_mrrt(sample("mrrt_mr_knee_uncoded.html"))

    assert (template.modalities, template.body_part) == ((), "")
    assert [(s.name, s.kind) for s in template.sections] == [
        ("FINDINGS", "findings"),
        ("IMPRESSION", "impression"),
    ]
    assert template.text_of("findings").splitlines() == [
        "MENISCI: Intact medial and lateral menisci.",
        "LIGAMENTS: Intact cruciate and collateral ligaments.",
        "[CARTILAGE]",
        "[JOINT FLUID: none/small/moderate/large]",
    ]


def test_scripts_in_a_template_are_never_text():
    html = b"""<html><body><section data-section-name="Findings"><header>Findings</header>
    <p>Normal.</p><script>alert("x")</script><p onclick="steal()">Heart normal.</p></section></body></html>"""

    template = parse_mrrt(html)

    assert template.text_of("findings") == "Normal.\nHeart normal."


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "empty"),
        (b"<html>" + b"x" * MAX_MRRT_BYTES + b"</html>", "at most 1024 KB"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        ("<html>Ärztlicher Befund</html>".encode("latin-1"), "UTF-8"),
        (b'{"title": "Chest", "sections": ["Findings"]}', "not an HTML file"),
        (b"Findings: normal.\nImpression: normal.", "not an HTML file"),
        (
            b"<html><head><title>Chest</title></head><body><p>Normal chest.</p></body></html>",
            "no report sections",
        ),
        (
            b'<html><body><section data-section-name="History"><p>Cough.</p></section></body></html>',
            "No Findings or Impression section: this template's sections are History",
        ),
    ],
    ids=["empty", "too-large", "binary", "not-utf8", "json", "plain-text", "no-sections", "no-findings"],
)
def test_files_that_are_not_usable_templates_are_refused_with_the_reason(data, says):
    with pytest.raises(MrrtError, match=says):
        parse_mrrt(data)


def test_deep_nesting_and_unclosed_tags_do_not_break_the_reader():
    html = (
        b'<html><body><section data-section-name="Findings"><header>Findings</header>'
        + b"<div>" * 5000
        + b"Deep text."
        + b"<p>Unclosed <select><option>a<option>b"
    )

    template = parse_mrrt(html)

    assert template.text_of("findings") == "Deep text.\nUnclosed [a/b]"
