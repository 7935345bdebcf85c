from django.apps import AppConfig


class IntakeConfig(AppConfig):
    name = "medportal.intake"
    label = "intake"
