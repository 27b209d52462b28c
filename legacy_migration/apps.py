from django.apps import AppConfig


class LegacyMigrationConfig(AppConfig):
    """Routers, legacy models and the extract–transform–load commands (filled by the legacy issue)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "legacy_migration"
    verbose_name = "Legacy migration"
