from django.db import migrations

from oms.roles import sync_roles


class Migration(migrations.Migration):
    """Give Migration operators and Auditors the permissions of the migration's records."""

    dependencies = [
        ("legacy_migration", "0001_initial"),
        ("invoices", "0002_staff_roles"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
