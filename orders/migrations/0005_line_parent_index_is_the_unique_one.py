import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """A line's parent is indexed by the (parent, line_number) unique constraint, whose first
    column it is: the foreign key's own index was a second copy, written for every line."""

    dependencies = [
        ("orders", "0004_api_and_prefix_search_indexes"),
    ]

    # Only the index goes: AlterField would also drop and re-add the foreign key, which on a
    # migrated store means validating millions of lines again for nothing.
    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="orderline",
                    name="order",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                            related_name="lines", to="orders.order"),
                ),
            ],
            database_operations=[
                migrations.RunSQL('DROP INDEX IF EXISTS "orders_orderline_order_id_17f8f3ef"',
                                  reverse_sql='CREATE INDEX "orders_orderline_order_id_17f8f3ef" ON "orders_orderline" ("order_id")'),
            ],
        ),
    ]
