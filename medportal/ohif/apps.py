from django.apps import AppConfig


class OhifConfig(AppConfig):
    name = "medportal.ohif"
    label = "ohif"
    verbose_name = "Diagnostic viewer (OHIF)"
