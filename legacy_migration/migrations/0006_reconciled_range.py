import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """Checksums per key range, so that a reconciliation moves only the records that changed."""

    dependencies = [("legacy_migration", "0005_reconciliation_roles")]

    operations = [
        migrations.CreateModel(
            name="ReconciledRange",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("scope", models.CharField(db_index=True, help_text="Fingerprint of the legacy database, the mapping code and the checksum algorithm: ranges of another scope are never trusted.", max_length=64)),
                ("entity", models.CharField(choices=[("customers", "Customers"), ("orders", "Orders (with lines)"), ("invoices", "Invoices (with lines)")], max_length=20)),
                ("position", models.PositiveIntegerField(help_text="Order of the range within its entity (legacy key order).")),
                ("after_key", models.CharField(blank=True, help_text="Exclusive lower bound; empty = from the start.", max_length=40)),
                ("last_key", models.CharField(blank=True, help_text="Inclusive upper bound; empty = to the end.", max_length=40)),
                ("legacy_checksum", models.CharField(blank=True, help_text="Empty = not verified equal.", max_length=120)),
                ("modern_checksum", models.CharField(blank=True, max_length=120)),
                ("figures", models.JSONField(blank=True, default=dict, help_text="Its counts, added up when it is skipped.")),
                ("totals", models.JSONField(blank=True, default=dict, help_text="Its share of the legacy control totals.")),
                ("depends", models.JSONField(blank=True, default=list, help_text="Parent states and code holders its outcome relied on.")),
                ("verified_at", models.DateTimeField(blank=True, null=True)),
                ("reconciliation", models.ForeignKey(blank=True, help_text="The reconciliation that last compared it.", null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to="legacy_migration.reconciliation")),
            ],
            options={
                "ordering": ["scope", "entity", "position"],
                "constraints": [models.UniqueConstraint(fields=("scope", "entity", "position"), name="reconciled_range_unique")],
            },
        ),
    ]
