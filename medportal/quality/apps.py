from django.apps import AppConfig


class QualityConfig(AppConfig):
    name = "medportal.quality"
    label = "quality"
    verbose_name = "AI draft quality"

    def ready(self) -> None:
        from medportal.quality import receivers

        receivers.connect()
