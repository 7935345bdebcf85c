from django.apps import AppConfig


class Hl7Config(AppConfig):
    name = "medportal.hl7"
    label = "hl7"
    verbose_name = "HL7 interface"

    def ready(self) -> None:
        from medportal.hl7 import receivers

        receivers.connect()
