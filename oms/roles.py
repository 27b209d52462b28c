"""Staff roles: a Django group per job, with exactly the permissions that job needs.

The data migration `invoices/0002_staff_roles` creates them; later migrations call
`sync_roles` again when new models (and so new permissions) arrive. Permissions are named
"app_label.codename".
"""

from __future__ import annotations

VIEW_ALL = [
    "orders.view_customer", "orders.view_order", "orders.view_orderline", "orders.view_orderstatusevent",
    "invoices.view_invoice", "invoices.view_invoiceline", "invoices.view_payment",
    "invoices.view_invoicestatusevent",
]

MIGRATION_VIEW = [
    "legacy_migration.view_migrationrun", "legacy_migration.view_workitem", "legacy_migration.view_migrationissue",
    "legacy_migration.view_reconciliation", "legacy_migration.view_discrepancy", "legacy_migration.view_controltotal",
    "legacy_migration.view_shadowmismatch", "legacy_migration.view_setasideindex",
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    # Takes orders and looks after customers.
    "Sales": VIEW_ALL + [
        "orders.add_customer", "orders.change_customer",
        "orders.add_order", "orders.change_order", "orders.transition_order",
        "orders.add_orderline", "orders.change_orderline", "orders.delete_orderline",
    ],
    # Bills: invoices, payments, voids and credit notes; may put a customer on credit hold.
    "Billing": VIEW_ALL + [
        "orders.change_customer",
        "invoices.add_invoice", "invoices.change_invoice", "invoices.issue_invoice",
        "invoices.record_payment", "invoices.void_invoice", "invoices.credit_invoice",
        "invoices.add_invoiceline", "invoices.change_invoiceline", "invoices.delete_invoiceline",
        "invoices.add_payment",
    ],
    # Runs the legacy migration and reads everything it touches (legacy permissions come with it).
    "Migration operators": VIEW_ALL + MIGRATION_VIEW + ["legacy_migration.run_migration",
                                                        "legacy_migration.run_reconciliation"],
    # Reads everything, changes nothing.
    "Auditors": VIEW_ALL + MIGRATION_VIEW,
}


def sync_roles(apps, schema_editor=None) -> None:
    """Create each role's group and set its permissions to exactly the list above.

    Runs inside migrations, where permissions may not exist yet (Django creates them after the
    last migration), so it creates them first for the apps involved. A permission whose model is
    not migrated yet is skipped: the migration that brings the model calls sync_roles again.
    """
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        original = getattr(app_config, "models_module", None)
        app_config.models_module = original or True  # create_permissions skips apps without models
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = original

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, names in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for name in names:
            app_label, codename = name.split(".")
            wanted += Permission.objects.filter(content_type__app_label=app_label, codename=codename)
        group.permissions.set(wanted)
