"""A study's arrival closes the follow-ups it satisfies. Imaging knows nothing of reports or
follow-ups, so this app listens to its ``post_save`` (a new study), once the study commits."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models.signals import post_save

logger = logging.getLogger(__name__)


def _close_follow_ups(sender, instance, created: bool, **kwargs) -> None:
    if not created:
        return
    study_id = instance.pk

    def close() -> None:
        from medportal.communication.followups import followups_close_for_study
        from medportal.imaging.models import Study

        try:
            followups_close_for_study(study=Study.objects.select_related("patient").get(pk=study_id))
        except Exception:  # the study is stored; a failure here must not undo or fail its intake
            logger.exception("follow-ups of study %s not closed", study_id)

    transaction.on_commit(close, robust=True)


def connect() -> None:
    post_save.connect(
        _close_follow_ups, sender="imaging.Study", dispatch_uid="communication-close-follow-ups"
    )
