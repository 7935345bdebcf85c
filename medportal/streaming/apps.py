from django.apps import AppConfig


class StreamingConfig(AppConfig):
    name = "medportal.streaming"
    label = "streaming"
