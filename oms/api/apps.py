from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "oms.api"
    label = "oms_api"
    verbose_name = "REST API"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the drf-spectacular extensions (auth scheme, field types) and the signal
        # receivers that keep cached principals fresh.
        from oms.api import auth, schema  # noqa: F401
