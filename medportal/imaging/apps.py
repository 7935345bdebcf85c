from django.apps import AppConfig


class ImagingConfig(AppConfig):
    name = "medportal.imaging"
    label = "imaging"
