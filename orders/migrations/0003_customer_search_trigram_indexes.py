"""Trigram indexes for the admin's customer search ("contains" on code, name, email).

Django's icontains on PostgreSQL is UPPER(col::text) LIKE UPPER('%term%'): a B-tree cannot serve
a leading wildcard, so every search scanned the 200,000 customers (~0.2 s per word, measured
in bench/admin_changelist.py). A GIN trigram index on exactly that expression serves it.
PostgreSQL only (pg_trgm ships with it); the SQLite demo does without.
"""

from django.db import migrations

COLUMNS = ("code", "name", "email")


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in COLUMNS:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS customer_{column}_trgm ON orders_customer "
            f"USING gin (UPPER({column}::text) gin_trgm_ops)")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in COLUMNS:
        schema_editor.execute(f"DROP INDEX IF EXISTS customer_{column}_trgm")


class Migration(migrations.Migration):
    dependencies = [("orders", "0002_totals_add_up_within_half_a_cent")]

    operations = [migrations.RunPython(create, drop)]
