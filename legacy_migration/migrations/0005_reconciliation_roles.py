from django.db import migrations

from oms.roles import sync_roles


class Migration(migrations.Migration):
    """Migration operators and auditors read reconciliations; operators may run them."""

    dependencies = [("legacy_migration", "0004_work_item_keys_scope")]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
