"""Links into the OHIF Viewer, for pages that open or embed it (the study page's reading room)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.db.models import F
from django.urls import reverse

from medportal.imaging.models import Study

# The reading room offers to open the study beside this many of the patient's other studies.
PRIORS_OFFERED = 5
# OHIF's hanging protocol for a study and its prior side by side (extensions/default, hpCompare).
COMPARE = "@ohif/hpCompare"


def viewer_url(study: Study, *, beside: Study | None = None) -> str:
    """The viewer opened on ``study`` (same origin, so the study page may put it in an iframe:
    ``<iframe src="{{ study|viewer_url }}">`` after ``{% load ohif %}``). With ``beside``, both
    studies side by side: OHIF takes ``StudyInstanceUIDs=a,b`` (the first is the one read) and
    its hanging protocol for two studies, which its viewer mode does not pick by itself."""
    query = {"StudyInstanceUIDs": study.study_uid}
    if beside is not None:
        query = {"StudyInstanceUIDs": f"{study.study_uid},{beside.study_uid}", "hangingProtocolId": COMPARE}
    return f"{reverse('viewer-path', args=['viewer'])}?{urlencode(query)}"


def patient_priors(study: Study) -> list[Study]:
    """The patient's other studies, the latest first (the ones a reader compares with)."""
    others = Study.objects.filter(patient_id=study.patient_id).exclude(pk=study.pk)
    return list(others.order_by(F("study_date").desc(nulls_last=True), "-pk")[:PRIORS_OFFERED])


def reading_room(study: Study) -> dict:
    """The study page's viewer: its URL on this study, and one to open it beside each prior."""
    return {
        "viewer_src": viewer_url(study),
        "viewer_priors": [(prior, viewer_url(study, beside=prior)) for prior in patient_priors(study)],
    }
