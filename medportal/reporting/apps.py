from django.apps import AppConfig


class ReportingConfig(AppConfig):
    name = "medportal.reporting"
    label = "reporting"
