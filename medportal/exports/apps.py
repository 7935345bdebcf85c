from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "medportal.exports"
    label = "exports"
