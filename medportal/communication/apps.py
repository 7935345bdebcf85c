from django.apps import AppConfig


class CommunicationConfig(AppConfig):
    name = "medportal.communication"
    label = "communication"
    verbose_name = "Critical results and follow-ups"

    def ready(self) -> None:
        from medportal.communication import receivers

        receivers.connect()
