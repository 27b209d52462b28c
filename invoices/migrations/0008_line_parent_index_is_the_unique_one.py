import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """A line's parent is indexed by the (parent, line_number) unique constraint, whose first
    column it is: the foreign key's own index was a second copy, written for every line."""

    dependencies = [
        ("invoices", "0007_api_and_prefix_search_indexes"),
    ]

    # Only the index goes: AlterField would also drop and re-add the foreign key, which on a
    # migrated store means validating millions of lines again for nothing.
    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="invoiceline",
                    name="invoice",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                            related_name="lines", to="invoices.invoice"),
                ),
            ],
            database_operations=[
                migrations.RunSQL('DROP INDEX IF EXISTS "invoices_invoiceline_invoice_id_071a8d97"',
                                  reverse_sql='CREATE INDEX "invoices_invoiceline_invoice_id_071a8d97" ON "invoices_invoiceline" ("invoice_id")'),
            ],
        ),
    ]
