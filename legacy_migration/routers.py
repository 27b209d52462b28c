"""Send the legacy models to the `legacy` connection, never write there, never migrate there."""

from __future__ import annotations

from django.conf import settings

LEGACY_ALIAS = "legacy"
LEGACY_APP_LABEL = "legacy_migration"


def is_legacy_model(model) -> bool:
    """Legacy tables are the unmanaged models of the legacy_migration app (flagged `legacy_table = True`)."""
    return getattr(model, "legacy_table", False)


class LegacyRouter:
    def db_for_read(self, model, **hints):
        return LEGACY_ALIAS if is_legacy_model(model) else "default"

    def db_for_write(self, model, **hints):
        if is_legacy_model(model):
            # We read the monolith; we never change it. Writing is a bug, so fail loudly.
            raise PermissionError(f"{model.__name__} lives in the legacy database, which is read-only for us")
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return is_legacy_model(type(obj1)) == is_legacy_model(type(obj2))

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if db == LEGACY_ALIAS or settings.DATABASES.get(db, {}).get("LEGACY"):
            return False  # no table of ours is ever created in, or altered on, the legacy database
        model = hints.get("model")
        if model is not None and is_legacy_model(model):
            return False
        return None
