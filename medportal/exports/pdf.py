"""The signed report as a PDF (WeasyPrint renders templates/exports/report_pdf.html).

WeasyPrint needs the Pango library of the system; it is imported when a PDF is made, so
MedPortal starts without it and the PDF export says what is missing.
"""

from __future__ import annotations

from django.template.loader import render_to_string
from django.utils import timezone
from PIL import ImageFile

from medportal.exports.content import SignedReport


class PdfUnavailable(Exception):
    """WeasyPrint (or the Pango library it needs) is not installed."""


def _no_fetching(url: str, *args, **kwargs):
    # The report is self-contained: nothing in it may make the renderer read a file or a URL.
    raise ValueError(f"the report PDF loads no external resource ({url[:80]})")


def report_pdf(content: SignedReport) -> bytes:
    try:
        from weasyprint import HTML
    except OSError as exc:  # the Python package is there, the system's Pango is not
        raise PdfUnavailable(f"PDF export needs the Pango library on the server: {exc}") from None
    # Importing WeasyPrint sets Pillow's process-wide LOAD_TRUNCATED_IMAGES; ingest relies on
    # Pillow refusing a truncated PNG or JPEG, and a report PDF holds no images.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    html = render_to_string("exports/report_pdf.html", {"c": content, "printed_at": timezone.localtime()})
    return HTML(string=html, url_fetcher=_no_fetching).write_pdf()
