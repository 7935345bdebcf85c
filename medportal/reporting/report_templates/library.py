"""Report templates: which one a study gets, and the admins' changes to them.

A template holds a department's normal text per section and the instruction added to the AI
prompt, for one modality and body part (blank: any). The worker drafts with the most specific
active template for the study; a report written by hand starts from its normal text.

Template changes are configuration changes: each is audited as a DICOM Security Alert (110113)
with the event type code Software Configuration (110131), naming the template and what changed.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from medportal.audit.models import Action, EventType, Outcome
from medportal.audit.services import audit_record
from medportal.reporting.drafting_scope import normal_body_part, scope_error, study_body_part
from medportal.reporting.models import ReportTemplate
from medportal.reporting.report_templates.mrrt import (
    COMPARISON,
    FINDINGS,
    IMPRESSION,
    TECHNIQUE,
    MrrtTemplate,
    parse_mrrt,
)

# What an admin edits; the rest (source, source_id, active) is set by the functions below.
FIELDS = (
    "name",
    "modality",
    "body_part",
    "has_technique",
    "has_comparison",
    "technique",
    "comparison",
    "findings",
    "impression",
    "prompt_instruction",
)
SOFTWARE_CONFIGURATION = {"event_type_code": "110131", "event_type_meaning": "Software Configuration"}


class TemplateError(ValueError):
    """A template change that was refused; the message says why. Nothing was stored."""


# -- reads ----------------------------------------------------------------------------------


def template_for_study(*, modality: str, body_part: str) -> ReportTemplate | None:
    """The most specific active template for a study: its modality before any modality, then its
    body part before any body part. None for a study MedGemma does not draft (no template is for it)."""
    modality = (modality or "").strip().upper()
    if scope_error(modality, body_part):
        return None
    part = study_body_part(modality, body_part)
    candidates = ReportTemplate.objects.filter(
        active=True, modality__in=[modality, ""], body_part__in=[part, ""]
    )
    return max(candidates, key=lambda t: (t.modality == modality, t.body_part == part), default=None)


def template_sections(template: ReportTemplate | None) -> tuple[str, ...]:
    """The report's sections, in order, for the prompt and the editor."""
    sections = []
    if template is not None and template.has_technique:
        sections.append("Technique")
    if template is not None and template.has_comparison:
        sections.append("Comparison")
    return (*sections, "Findings", "Impression")


def template_scope_label(template: ReportTemplate) -> str:
    return f"{template.modality or 'any modality'}, {template.body_part.lower() or 'any body part'}"


# -- changes --------------------------------------------------------------------------------


def template_audit(
    template: ReportTemplate, description: str, *, action: Action, user, request, detail: dict
) -> None:
    """Every change to a template is a configuration change (Security Alert, 110131)."""
    audit_record(
        event_type=EventType.SECURITY_ALERT,
        action=action,
        description=description,
        outcome=Outcome.SUCCESS,
        request=request,
        user=user,
        object_type="report_template",
        object_id=template.pk,
        detail={**SOFTWARE_CONFIGURATION, "template": template.name, **detail},
    )


def _clean(fields: dict) -> dict:
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise TypeError(f"not template fields: {sorted(unknown)}")
    cleaned = dict(fields)
    if "name" in cleaned:
        cleaned["name"] = cleaned["name"].strip()
    if "modality" in cleaned:
        cleaned["modality"] = cleaned["modality"].strip().upper()
    if "body_part" in cleaned:
        cleaned["body_part"] = normal_body_part(cleaned["body_part"])
    return cleaned


def _validate(template: ReportTemplate) -> None:
    if not template.name:
        raise TemplateError("Give the template a name.")
    if template.modality:
        refused = scope_error(template.modality, template.body_part, for_template=True)
        if refused:
            raise TemplateError(refused)
    if not (template.findings.strip() or template.impression.strip() or template.prompt_instruction.strip()):
        raise TemplateError("The template is empty: write its normal findings, impression or AI instruction.")
    if template.active:
        other = (
            ReportTemplate.objects.filter(
                active=True, modality=template.modality, body_part=template.body_part
            )
            .exclude(pk=template.pk)
            .first()
        )
        if other is not None:
            raise TemplateError(
                f"“{other.name}” is already the active template for {template_scope_label(template)}; "
                "deactivate it or edit it instead."
            )


def _save(template: ReportTemplate) -> None:
    _validate(template)
    try:
        with transaction.atomic():
            template.save()
    except IntegrityError:  # another admin activated one for the same scope at the same moment
        raise TemplateError(
            f"Another template became active for {template_scope_label(template)} meanwhile; "
            "reload and try again."
        ) from None


def template_create(*, user, request=None, source: str = ReportTemplate.LOCAL, source_id: str = "", **fields):
    """Create an active template. TemplateError (nothing stored) when it is not valid."""
    template = ReportTemplate(**_clean(fields), source=source, source_id=source_id, updated_by=user)
    with transaction.atomic():
        _save(template)
        template_audit(
            template,
            f"Report template created: {template.name}",
            action=Action.CREATE,
            user=user,
            request=request,
            detail={
                "modality": template.modality,
                "body_part": template.body_part,
                "source": template.source,
                "source_id": template.source_id,
            },
        )
    return template


def template_update(*, template: ReportTemplate, user, request=None, **fields) -> ReportTemplate:
    """Change a template's fields. Reports it drafted keep the prompt and template name they had."""
    with transaction.atomic():
        current = ReportTemplate.objects.select_for_update().get(pk=template.pk)
        cleaned = _clean(fields)
        changed = sorted(name for name, value in cleaned.items() if getattr(current, name) != value)
        if not changed:
            return current
        before = {"name": current.name, "modality": current.modality, "body_part": current.body_part}
        for name, value in cleaned.items():
            setattr(current, name, value)
        current.updated_by = user
        _save(current)
        template_audit(
            current,
            f"Report template changed: {current.name}",
            action=Action.UPDATE,
            user=user,
            request=request,
            detail={"changed": changed, "before": before},
        )
    return current


def template_set_active(*, template: ReportTemplate, active: bool, user, request=None) -> ReportTemplate:
    """Deactivate a template (drafts stop using it; reports that used it keep it), or activate it again."""
    with transaction.atomic():
        current = ReportTemplate.objects.select_for_update().get(pk=template.pk)
        if current.active == active:
            return current
        current.active, current.updated_by = active, user
        _save(current)
        template_audit(
            current,
            f"Report template {'activated' if active else 'deactivated'}: {current.name}",
            action=Action.UPDATE,
            user=user,
            request=request,
            detail={"active": active},
        )
    return current


def template_delete(*, template: ReportTemplate, user, request=None) -> None:
    """Delete a template no report used; one that a report used can only be deactivated."""
    with transaction.atomic():
        current = ReportTemplate.objects.select_for_update().get(pk=template.pk)
        used = current.reports.count()
        if used:
            raise TemplateError(
                f"“{current.name}” was used by {used} report{'s' if used != 1 else ''}, which must keep "
                "it on record; deactivate it instead."
            )
        template_audit(
            current,
            f"Report template deleted: {current.name}",
            action=Action.DELETE,
            user=user,
            request=request,
            detail={"modality": current.modality, "body_part": current.body_part, "source": current.source},
        )
        try:
            current.delete()
        except ProtectedError:  # a draft finished with it just now
            raise TemplateError(
                f"“{current.name}” was just used by a report; deactivate it instead."
            ) from None


def template_import_mrrt(
    *, data: bytes, user, modality: str = "", body_part: str = "", request=None
) -> tuple[ReportTemplate, MrrtTemplate]:
    """Create a template from an IHE MRRT file. ``modality`` and ``body_part`` (from the form) are
    used where given, else those the template's codes name. MrrtError or TemplateError: nothing stored."""
    parsed = parse_mrrt(data)
    modality = modality.strip().upper()
    if not modality:
        if len(parsed.modalities) > 1:
            raise TemplateError(
                f"“{parsed.title}” is coded for {' or '.join(parsed.modalities)} "
                f"(projection radiography); choose which modality it is for."
            )
        if not parsed.modalities:
            raise TemplateError(
                f"“{parsed.title}” does not say its modality (no DICOM or RadLex modality code); choose one."
            )
        modality = parsed.modalities[0]
    template = template_create(
        user=user,
        request=request,
        source=ReportTemplate.MRRT,
        source_id=parsed.identifier,
        name=parsed.title,
        modality=modality,
        body_part=body_part.strip() or parsed.body_part,
        has_technique=parsed.has(TECHNIQUE),
        has_comparison=parsed.has(COMPARISON),
        technique=parsed.text_of(TECHNIQUE),
        comparison=parsed.text_of(COMPARISON),
        findings=parsed.text_of(FINDINGS),
        impression=parsed.text_of(IMPRESSION),
    )
    return template, parsed
