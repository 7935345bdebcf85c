"""Receiving studies: ingest the files, then open a report (and queue a draft) for each new study."""

from __future__ import annotations

from django.conf import settings

from medportal.imaging.ingest import IncomingFile, IngestResult, study_ingest
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
    priority: Priority | None = None,
    auto_draft: bool | None = None,
    request=None,
    source: str = "upload",
    unpack_archives: bool = True,
) -> tuple[IngestResult, list[Report]]:
    """Returns the ingest result and the report of every study the files belong to.

    Zip files among ``files`` are unpacked first (``unpack_archives``); each member is ingested
    as a file of its own.
    """
    if unpack_archives:
        files = archives_unpack(files=files)
    result, created = study_ingest(
        files=files,
        uploader=uploader,
        indication=indication,
        image_modality=image_modality,
        priority=priority,
        request=request,
        source=source,
    )
    draft = settings.MEDPORTAL_AUTO_DRAFT if auto_draft is None else auto_draft
    created_ids = {study.pk for study in created}
    reports = [
        study_open_report(study=study, user=uploader, auto_draft=draft, request=request)
        if study.pk in created_ids
        else report_for_study(study=study)
        for study in result.studies
    ]
    return result, reports
