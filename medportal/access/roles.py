"""Roles are Django groups. Permission checks ask for roles, never for users."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Role(StrEnum):
    TECHNOLOGIST = "technologist"
    RADIOLOGIST = "radiologist"
    AUDITOR = "auditor"
    ADMIN = "admin"
    # Machine accounts (an inference worker on another host): retrieve instances over
    # WADO-RS, nothing else. They have no password, so they never hold a session.
    SERVICE = "service"


def roles_of(user: Any) -> set[Role]:
    if user is None or not user.is_authenticated or not user.is_active:
        return set()
    cached = getattr(user, "_medportal_roles", None)
    if cached is None:
        names = set(user.groups.values_list("name", flat=True))
        cached = {role for role in Role if role.value in names}
        if user.is_superuser:
            cached.add(Role.ADMIN)
        user._medportal_roles = cached
    return cached


def has_role(user: Any, *roles: Role) -> bool:
    return bool(roles_of(user) & set(roles))


# Who may do what. One table, read by views, the API and the websocket consumer.
CAN_UPLOAD = (Role.TECHNOLOGIST, Role.RADIOLOGIST, Role.ADMIN)
CAN_VIEW_STUDIES = (Role.TECHNOLOGIST, Role.RADIOLOGIST, Role.ADMIN)
# WADO-RS retrieve of a study, series or instance (the DICOM files, nothing rendered or searched).
CAN_RETRIEVE_INSTANCES = (*CAN_VIEW_STUDIES, Role.SERVICE)
CAN_REQUEST_DRAFT = (Role.RADIOLOGIST, Role.TECHNOLOGIST, Role.ADMIN)
CAN_EDIT_REPORTS = (Role.RADIOLOGIST,)
CAN_SIGN_REPORTS = (Role.RADIOLOGIST,)
# The worklist: claiming a study to read it, and an admin giving one to a radiologist.
CAN_CLAIM_STUDIES = (Role.RADIOLOGIST,)
CAN_ASSIGN_STUDIES = (Role.ADMIN,)
# Cancelling withdraws a study from reading (ordered in error, the order was cancelled).
CAN_CANCEL_REPORTS = (Role.RADIOLOGIST, Role.ADMIN)
CAN_READ_AUDIT = (Role.AUDITOR, Role.ADMIN)
# The inference workers and their queues (the Workers page).
CAN_OPERATE = (Role.ADMIN,)
# De-identified export: the images leave MedPortal, so not every role that views them may.
CAN_EXPORT = (Role.RADIOLOGIST, Role.ADMIN)
# Report templates (normal text and AI prompt instructions) are department configuration.
CAN_MANAGE_TEMPLATES = (Role.ADMIN,)
# How far radiologists change the AI drafts, per model, modality and radiologist.
CAN_VIEW_QUALITY = (Role.ADMIN,)
# Outbound interfaces (the HL7 outbox: what went to the EHR, resending what failed).
CAN_MANAGE_INTERFACES = (Role.ADMIN,)
# People's accounts: create, roles, deactivate, reset a password (the Users page).
CAN_MANAGE_USERS = (Role.ADMIN,)
# Critical results: marking one and recording whom was told (radiologists); the Critical results
# and Follow-ups pages, where unacknowledged results escalate (radiologists and admins).
CAN_COMMUNICATE_CRITICAL = (Role.RADIOLOGIST,)
CAN_VIEW_CRITICAL = (Role.RADIOLOGIST, Role.ADMIN)
