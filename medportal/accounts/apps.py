from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "medportal.accounts"
    label = "accounts"

    def ready(self) -> None:
        from medportal.accounts import signals  # noqa: F401  (login/logout audit)
