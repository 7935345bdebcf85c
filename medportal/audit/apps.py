from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "medportal.audit"
    label = "audit"
