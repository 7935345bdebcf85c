"""Links into the OHIF Viewer, for pages that open or embed it (the study page's reading room)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.urls import reverse

from medportal.imaging.models import Study


def viewer_url(study: Study) -> str:
    """The viewer opened on ``study`` (same origin, so the study page may put it in an iframe:
    ``<iframe src="{{ study|viewer_url }}">`` after ``{% load ohif %}``)."""
    return f"{reverse('viewer-path', args=['viewer'])}?{urlencode({'StudyInstanceUIDs': study.study_uid})}"
