"""Receiving studies: ingest the files, then open a report (and queue a draft) for each new study."""

from __future__ import annotations

from django.conf import settings

from medportal.imaging.ingest import IncomingFile, IngestResult, PictureDetails, study_ingest
from medportal.imaging.models import Priority
from medportal.intake.archive import archives_unpack
from medportal.reporting.models import Report
from medportal.reporting.services.drafts import report_for_study, study_open_report


def studies_receive(
    *,
    files: list[IncomingFile],
    uploader,
    indication: str = "",
    image_modality: str = "DX",
    picture: PictureDetails | None = None,
    priority: Priority | None = None,
    auto_draft: bool | None = None,
    request=None,
    source: str = "upload",
    unpack_archives: bool = True,
) -> tuple[IngestResult, list[Report]]:
    """Returns the ingest result and the report of every study the files belong to.

    Zip files among ``files`` are unpacked first (``unpack_archives``); each member is ingested
    as a file of its own. Only a study with an image is drafted: one that so far holds only a dose
    report or a presentation state waits for its images (and is drafted when they arrive).
    """
    if unpack_archives:
        files = archives_unpack(files=files)
    result, _ = study_ingest(
        files=files,
        uploader=uploader,
        indication=indication,
        image_modality=image_modality,
        picture=picture,
        priority=priority,
        request=request,
        source=source,
    )
    draft = settings.MEDPORTAL_AUTO_DRAFT if auto_draft is None else auto_draft
    reports = [
        study_open_report(study=study, user=uploader, auto_draft=draft, request=request)
        if study.pk in result.first_images
        else report_for_study(study=study)
        for study in result.studies
    ]
    return result, reports
