"""Reads of a study that pages need beside the viewer."""

from __future__ import annotations

from medportal.imaging.models import Instance, Study


def study_has_images(study: Study) -> bool:
    """Whether the viewer has anything to show (a study may hold only reports, PDFs, RT objects)."""
    return Instance.objects.filter(series__study=study, is_image=True).exists()


def study_other_objects(study: Study) -> list[Instance]:
    """The study's stored objects that are not images (structured reports, presentation states,
    key objects, PDFs, RT objects, waveforms): listed on the study page, never drafted from."""
    return list(
        Instance.objects.filter(series__study=study, is_image=False)
        .select_related("series")
        .order_by("series__series_number", "series_id", "instance_number", "id")
    )
