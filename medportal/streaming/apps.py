from django.apps import AppConfig


class StreamingConfig(AppConfig):
    name = "medportal.streaming"
    label = "streaming"

    def ready(self) -> None:
        from medportal.streaming import receivers

        receivers.connect()
