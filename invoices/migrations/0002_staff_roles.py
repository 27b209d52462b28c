from django.db import migrations

from oms.roles import sync_roles


class Migration(migrations.Migration):
    """Create the staff roles (Sales, Billing, Migration operators, Auditors) as groups."""

    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("orders", "0001_initial"),
        ("invoices", "0001_initial"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
