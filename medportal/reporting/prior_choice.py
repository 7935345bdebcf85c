"""The radiologist chooses the prior exam the next AI draft compares with, or none."""

from __future__ import annotations

from django.db import transaction

from medportal.access.roles import CAN_EDIT_REPORTS, has_role
from medportal.audit.models import Action
from medportal.imaging.models import Study
from medportal.reporting.auditing import report_audit
from medportal.reporting.lifecycle import ReportError
from medportal.reporting.models import Report
from medportal.reporting.priors import prior_candidates, prior_label


def report_choose_prior(
    *, report: Report, prior_study: Study | None, user, request=None, automatic: bool = False
) -> Report:
    """Record the prior the next draft of ``report`` compares with: ``prior_study`` (one of
    ``prior_candidates``), or no prior at all when it is None; ``automatic`` goes back to the
    latest signed prior. The draft itself is asked for as before (regenerate)."""
    if not has_role(user, *CAN_EDIT_REPORTS):
        raise ReportError("Only a radiologist can choose the prior exam of a draft.")
    with transaction.atomic():
        locked = Report.objects.select_for_update().select_related("study__patient").get(pk=report.pk)
        if not locked.is_open:
            raise ReportError("The report is signed or cancelled: its draft's prior cannot change.")
        if automatic:
            choice, prior, description = "auto", None, "Prior exam of the AI draft: the latest signed one"
        elif prior_study is None:
            choice, prior, description = "none", None, "Prior exam of the AI draft: none"
        else:
            if prior_study.pk not in {c.pk for c in prior_candidates(study=locked.study)}:
                raise ReportError(
                    "That study cannot be the prior of this draft: a prior is an earlier chest X-ray "
                    "of the same patient with a signed report."
                )
            choice, prior = "chosen", prior_study
            description = f"Prior exam of the AI draft chosen: {prior_label(prior_study)}"
        Report.objects.filter(pk=locked.pk).update(prior_choice=choice, prior_study=prior)
        report_audit(
            locked,
            description,
            action=Action.UPDATE,
            request=request,
            user=user,
            detail={"prior_choice": choice, "prior_study_uid": prior.study_uid if prior else None},
        )
        locked.refresh_from_db()
    return locked
