from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "medportal.operations"
    label = "operations"
