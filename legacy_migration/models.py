"""Two kinds of models live here.

1. The legacy tables, as unmanaged models that mirror the data dictionary
   (../shared/legacy/LEGACY_SCHEMA.md). The router sends them to the `legacy` connection and
   forbids writes and migrations there. Column names are the legacy ones, upper-case (Oracle
   stores them so; SQL Server does not care).
2. The migration's own bookkeeping, on the default database: runs, the work items that cut a run
   into key ranges (the checkpoints, committed with the data they describe), and the issues
   (rejections, warnings, exclusions) that staff read in the admin.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


# ---------------------------------------------------------------------------------------------
# Legacy tables (read-only, `legacy` connection)
# ---------------------------------------------------------------------------------------------
class LegacyModel(models.Model):
    legacy_table = True  # the router's marker

    class Meta:
        abstract = True
        managed = False


class LegacyCustomer(LegacyModel):
    CUST_ID = models.IntegerField(primary_key=True, db_column="CUST_ID")
    CUST_CODE = models.CharField(max_length=10, db_column="CUST_CODE")
    CUST_NAME = models.CharField(max_length=100, db_column="CUST_NAME")
    EMAIL = models.CharField(max_length=254, null=True, db_column="EMAIL")
    PHONE = models.CharField(max_length=30, null=True, db_column="PHONE")
    ADDR_LINE1 = models.CharField(max_length=100, null=True, db_column="ADDR_LINE1")
    ADDR_LINE2 = models.CharField(max_length=100, null=True, db_column="ADDR_LINE2")
    CITY = models.CharField(max_length=60, null=True, db_column="CITY")
    STATE_CD = models.CharField(max_length=2, null=True, db_column="STATE_CD")
    POSTAL_CD = models.CharField(max_length=10, null=True, db_column="POSTAL_CD")
    COUNTRY_CD = models.CharField(max_length=2, null=True, db_column="COUNTRY_CD")
    CUST_STATUS = models.CharField(max_length=1, db_column="CUST_STATUS")
    CREDIT_LIMIT = models.DecimalField(max_digits=19, decimal_places=4, null=True, db_column="CREDIT_LIMIT")
    CREATED_DT = models.DateTimeField(db_column="CREATED_DT")
    LAST_UPD_DT = models.DateTimeField(null=True, db_column="LAST_UPD_DT")

    class Meta(LegacyModel.Meta):
        db_table = "CUSTMAST"
        verbose_name = "legacy customer (CUSTMAST)"


class LegacyOrder(LegacyModel):
    ORD_NO = models.IntegerField(primary_key=True, db_column="ORD_NO")
    CUST_ID = models.IntegerField(db_column="CUST_ID")  # no foreign key in the legacy schema: orphans exist
    ORD_DT = models.DateTimeField(db_column="ORD_DT")
    REQ_SHIP_DT = models.DateTimeField(null=True, db_column="REQ_SHIP_DT")
    ORD_STATUS = models.CharField(max_length=1, db_column="ORD_STATUS")
    CURR_CD = models.CharField(max_length=3, null=True, db_column="CURR_CD")
    SUBTOTAL_AMT = models.DecimalField(max_digits=19, decimal_places=4, db_column="SUBTOTAL_AMT")
    DISC_AMT = models.DecimalField(max_digits=19, decimal_places=4, db_column="DISC_AMT")
    TAX_AMT = models.DecimalField(max_digits=19, decimal_places=4, db_column="TAX_AMT")
    FREIGHT_AMT = models.DecimalField(max_digits=19, decimal_places=4, db_column="FREIGHT_AMT")
    TOTAL_AMT = models.DecimalField(max_digits=19, decimal_places=4, db_column="TOTAL_AMT")
    SHIP_NAME = models.CharField(max_length=100, null=True, db_column="SHIP_NAME")
    SHIP_ADDR1 = models.CharField(max_length=100, null=True, db_column="SHIP_ADDR1")
    SHIP_ADDR2 = models.CharField(max_length=100, null=True, db_column="SHIP_ADDR2")
    SHIP_CITY = models.CharField(max_length=100, null=True, db_column="SHIP_CITY")
    SHIP_STATE = models.CharField(max_length=2, null=True, db_column="SHIP_STATE")
    SHIP_POSTAL = models.CharField(max_length=10, null=True, db_column="SHIP_POSTAL")
    SHIP_COUNTRY = models.CharField(max_length=2, null=True, db_column="SHIP_COUNTRY")
    PO_NUMBER = models.CharField(max_length=30, null=True, db_column="PO_NUMBER")
    NOTES = models.TextField(null=True, db_column="NOTES")
    DEL_FLG = models.CharField(max_length=1, db_column="DEL_FLG")
    CREATED_BY = models.CharField(max_length=30, null=True, db_column="CREATED_BY")
    LAST_UPD_DT = models.DateTimeField(null=True, db_column="LAST_UPD_DT")

    class Meta(LegacyModel.Meta):
        db_table = "ORDHDR"
        verbose_name = "legacy order (ORDHDR)"


class LegacyOrderLine(LegacyModel):
    pk = models.CompositePrimaryKey("ORD_NO", "LINE_NO")
    ORD_NO = models.IntegerField(db_column="ORD_NO")  # no foreign key: lines without a header exist
    LINE_NO = models.SmallIntegerField(db_column="LINE_NO")
    ITEM_SKU = models.CharField(max_length=20, db_column="ITEM_SKU")
    ITEM_DESC = models.CharField(max_length=200, null=True, db_column="ITEM_DESC")
    QTY_ORD = models.DecimalField(max_digits=12, decimal_places=3, db_column="QTY_ORD")
    UNIT_PRICE = models.DecimalField(max_digits=19, decimal_places=4, db_column="UNIT_PRICE")
    DISC_PCT = models.DecimalField(max_digits=5, decimal_places=2, db_column="DISC_PCT")
    LINE_TOTAL = models.DecimalField(max_digits=19, decimal_places=4, db_column="LINE_TOTAL")

    class Meta(LegacyModel.Meta):
        db_table = "ORDDTL"
        verbose_name = "legacy order line (ORDDTL)"


class LegacyInvoice(LegacyModel):
    INV_NO = models.CharField(max_length=12, primary_key=True, db_column="INV_NO")
    ORD_NO = models.IntegerField(null=True, db_column="ORD_NO")
    CUST_ID = models.IntegerField(db_column="CUST_ID")
    INV_DT = models.DateTimeField(db_column="INV_DT")
    DUE_DT = models.DateTimeField(null=True, db_column="DUE_DT")
    INV_STATUS = models.CharField(max_length=1, db_column="INV_STATUS")
    CURR_CD = models.CharField(max_length=3, null=True, db_column="CURR_CD")
    NET_AMT = models.DecimalField(max_digits=19, decimal_places=4, db_column="NET_AMT")
    TAX_AMT = models.DecimalField(max_digits=19, decimal_places=4, db_column="TAX_AMT")
    INV_AMT = models.DecimalField(max_digits=19, decimal_places=4, db_column="INV_AMT")
    PAID_AMT = models.DecimalField(max_digits=19, decimal_places=4, db_column="PAID_AMT")
    PAID_DT = models.DateTimeField(null=True, db_column="PAID_DT")

    class Meta(LegacyModel.Meta):
        db_table = "INVHDR"
        verbose_name = "legacy invoice (INVHDR)"


class LegacyInvoiceLine(LegacyModel):
    pk = models.CompositePrimaryKey("INV_NO", "LINE_NO")
    INV_NO = models.CharField(max_length=12, db_column="INV_NO")
    LINE_NO = models.SmallIntegerField(db_column="LINE_NO")
    DESCR = models.CharField(max_length=200, null=True, db_column="DESCR")
    QTY = models.DecimalField(max_digits=12, decimal_places=3, db_column="QTY")
    UNIT_PRICE = models.DecimalField(max_digits=19, decimal_places=4, db_column="UNIT_PRICE")
    LINE_AMT = models.DecimalField(max_digits=19, decimal_places=4, db_column="LINE_AMT")

    class Meta(LegacyModel.Meta):
        db_table = "INVDTL"
        verbose_name = "legacy invoice line (INVDTL)"


# ---------------------------------------------------------------------------------------------
# The migration's bookkeeping (default connection)
# ---------------------------------------------------------------------------------------------
class Entity(models.TextChoices):
    """What a run moves, in dependency order."""

    CUSTOMERS = "customers", "Customers"
    ORDERS = "orders", "Orders (with lines)"
    INVOICES = "invoices", "Invoices (with lines)"


ENTITY_ORDER = [Entity.CUSTOMERS, Entity.ORDERS, Entity.INVOICES]


class RunStatus(models.TextChoices):
    PLANNING = "planning", "Planning"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed (resumable)"


class MigrationRun(models.Model):
    """One invocation of migrate_legacy (resumed invocations continue the same run)."""

    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    started_by = models.CharField(max_length=150, help_text="The operator (OS or Django user) who started it.")
    options = models.JSONField(default=dict, help_text="The options it was started with.")
    fingerprint = models.CharField(max_length=64, db_index=True,
                                   help_text="Same options → same fingerprint: how a re-run finds the run to resume.")
    legacy_vendor = models.CharField(max_length=20, blank=True)
    dry_run = models.BooleanField(default=False)
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.PLANNING, db_index=True)
    message = models.TextField(blank=True)
    seconds = models.FloatField(default=0, help_text="Time spent working, summed over resumptions.")
    planned_entities = models.JSONField(default=list, help_text="Entities whose work items exist already.")
    summary = models.JSONField(default=dict, blank=True,
                               help_text="Per entity: read, inserted, updated, unchanged, excluded, rejected, warned.")

    class Meta:
        ordering = ["-started_at", "-id"]
        permissions = [("run_migration", "Can run the legacy migration")]

    def __str__(self) -> str:
        return f"Run #{self.pk} ({self.get_status_display()}) {self.started_at:%Y-%m-%d %H:%M}"


class WorkStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"


class WorkItem(models.Model):
    """A key range of one entity: the unit of work, of parallelism and of checkpointing.

    An item is marked done in the same transaction that loads its rows, so after a crash an item
    is either fully loaded and done, or untouched and pending: a resume repeats at most the items
    that were in flight (one per worker).
    """

    run = models.ForeignKey(MigrationRun, on_delete=models.CASCADE, related_name="work_items")
    entity = models.CharField(max_length=20, choices=Entity.choices)
    position = models.PositiveIntegerField(help_text="Order of the range within its entity.")
    scope = models.CharField(max_length=20, default="range",
                             choices=[("range", "Key range"), ("orphans", "Lines without a header"),
                                      ("keys", "Chosen records")])
    after_key = models.CharField(max_length=40, blank=True, help_text="Exclusive lower bound; empty = from the start.")
    last_key = models.CharField(max_length=40, blank=True, help_text="Inclusive upper bound.")
    planned = models.PositiveIntegerField(default=0, help_text="Records in the range when it was planned.")
    status = models.CharField(max_length=20, choices=WorkStatus.choices, default=WorkStatus.PENDING)
    worker = models.CharField(max_length=100, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    seconds = models.FloatField(default=0)
    read = models.PositiveIntegerField(default=0)
    inserted = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    excluded = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    warned = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["run", "entity", "position"]
        constraints = [models.UniqueConstraint(fields=["run", "entity", "position"], name="work_item_unique")]
        indexes = [models.Index(fields=["run", "status", "entity", "position"], name="work_item_claim_idx")]

    def __str__(self) -> str:
        return f"{self.entity} ({self.after_key or '…'}, {self.last_key}] ({self.status})"


class SetAsideKind(models.TextChoices):
    INDEX = "index", "Index"
    FOREIGN_KEY = "foreign key", "Foreign key"


class SetAsideIndex(models.Model):
    """A secondary index or foreign key of a modern table, dropped while a first load fills the
    empty table and built again once the entity is loaded (PostgreSQL; see set_aside.py).

    The row is written in the transaction that drops the index, and marked rebuilt in the one that
    builds it again, so whatever kills a run, the definitions needed to finish are here. A row
    outlives its run (SET_NULL): the next run of the same tables adopts it.
    """

    run = models.ForeignKey(MigrationRun, on_delete=models.SET_NULL, null=True, blank=True,
                            related_name="set_aside_indexes")
    entity = models.CharField(max_length=20, choices=Entity.choices)
    table_name = models.CharField(max_length=100)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=SetAsideKind.choices)
    definition = models.TextField(help_text="The SQL that builds it again (from PostgreSQL's own catalog).")
    set_aside_at = models.DateTimeField(default=timezone.now)
    rebuilt_at = models.DateTimeField(null=True, blank=True)
    seconds = models.FloatField(default=0, help_text="Time the rebuild took.")

    class Meta:
        ordering = ["-set_aside_at", "id"]
        verbose_name = "index set aside for a first load"
        verbose_name_plural = "indexes set aside for first loads"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.name} on {self.table_name}"

    @property
    def pending(self) -> bool:
        return self.rebuilt_at is None


class IssueKind(models.TextChoices):
    REJECTION = "rejection", "Rejected"
    WARNING = "warning", "Warning"
    EXCLUSION = "exclusion", "Excluded by rule"


class MigrationIssue(models.Model):
    """A record the migration rejected, excluded, or carried over with a data-quality warning."""

    # The run's index is the composite one below (its first column): no index of its own.
    run = models.ForeignKey(MigrationRun, on_delete=models.CASCADE, related_name="issues", db_index=False)
    entity = models.CharField(max_length=20, help_text="customer, order, order_line, invoice, invoice_line")
    legacy_key = models.CharField(max_length=60)
    kind = models.CharField(max_length=20, choices=IssueKind.choices)
    rule = models.CharField(max_length=60)
    message = models.TextField()
    raw = models.JSONField(default=dict, help_text="The legacy values as read, for staff to fix at the source.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["run", "entity", "legacy_key", "id"]
        # A big run writes hundreds of thousands of issues, so each index is paid for on every one
        # of them. Three serve what staff and the API ask: the default order (and the run and
        # entity filters), an exact legacy-key search, and the kind/rule filters within a run.
        # (One index per column, as db_index=True made them, cost ten index writes an issue,
        # four of them LIKE-pattern copies that no query here uses.)
        indexes = [
            models.Index(fields=["run", "entity", "legacy_key", "id"], name="issue_run_entity_key_idx"),
            models.Index(fields=["legacy_key"], name="issue_legacy_key_idx"),
            models.Index(fields=["run", "kind", "rule"], name="issue_run_kind_rule_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.entity} {self.legacy_key} ({self.rule})"


# ---------------------------------------------------------------------------------------------
# Reconciliation: proof that legacy and modern agree (default connection)
# ---------------------------------------------------------------------------------------------
class ReconciliationStatus(models.TextChoices):
    RUNNING = "running", "Running"
    VALIDATED = "validated", "Validated: both sides agree"
    MISMATCHED = "mismatched", "Mismatched"
    FAILED = "failed", "Failed"


class Reconciliation(models.Model):
    """One comparison of legacy and modern, record by record, through the migration's mapping."""

    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    started_by = models.CharField(max_length=150)
    scope = models.JSONField(default=dict, help_text="Entities, --since and key range it covered.")
    status = models.CharField(max_length=20, choices=ReconciliationStatus.choices,
                              default=ReconciliationStatus.RUNNING, db_index=True)
    figures = models.JSONField(default=dict, help_text="Per entity: counts on each side and of each kind of finding.")
    seconds = models.FloatField(default=0)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        permissions = [("run_reconciliation", "Can run a reconciliation")]

    def __str__(self) -> str:
        return f"Reconciliation #{self.pk} ({self.get_status_display()}) {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def is_full(self) -> bool:
        return not self.scope.get("since") and not self.scope.get("keys")


class DiscrepancyKind(models.TextChoices):
    MISSING = "missing", "Missing in modern"
    EXTRA = "extra", "In modern, legacy source gone"
    DIFFERS = "differs", "Fields differ"
    NOT_EXPECTED = "not_expected", "In modern, but excluded or rejected by rule"


class Discrepancy(models.Model):
    reconciliation = models.ForeignKey(Reconciliation, on_delete=models.CASCADE, related_name="discrepancies")
    entity = models.CharField(max_length=20, db_index=True,
                              help_text="customer, order, order_line, invoice, invoice_line")
    legacy_key = models.CharField(max_length=60, db_index=True)
    kind = models.CharField(max_length=20, choices=DiscrepancyKind.choices, db_index=True)
    fields = models.JSONField(default=dict, help_text="field → {legacy (as carried over), modern}")
    legacy = models.JSONField(null=True, blank=True, help_text="The legacy record as carried over by the mapping.")
    modern = models.JSONField(null=True, blank=True, help_text="The modern record.")

    class Meta:
        ordering = ["reconciliation", "entity", "legacy_key", "id"]
        verbose_name_plural = "discrepancies"

    def __str__(self) -> str:
        return f"{self.entity} {self.legacy_key}: {self.get_kind_display()}"


class ControlTotal(models.Model):
    """Amounts summed per currency per month (legacy local time), on both sides."""

    reconciliation = models.ForeignKey(Reconciliation, on_delete=models.CASCADE, related_name="control_totals")
    entity = models.CharField(max_length=20)
    currency = models.CharField(max_length=3)
    month = models.DateField()
    legacy_count = models.PositiveIntegerField(default=0)
    legacy_amount = models.DecimalField(max_digits=20, decimal_places=2, default=0)
    modern_count = models.PositiveIntegerField(default=0)
    modern_amount = models.DecimalField(max_digits=20, decimal_places=2, default=0)

    class Meta:
        ordering = ["reconciliation", "entity", "currency", "month"]

    @property
    def difference(self):
        return self.modern_amount - self.legacy_amount

    @property
    def agrees(self) -> bool:
        return self.difference == 0 and self.legacy_count == self.modern_count


class ReconciledRange(models.Model):
    """A key range of one entity, and the checksums both sides had when it was last found equal.

    The next full reconciliation checksums each range again on both sides (the legacy engine over the
    raw rows, PostgreSQL over the modern values): a range whose two checksums and parent states are
    unchanged is still equal and its rows are not moved. See legacy_migration/checksums.py.
    """

    scope = models.CharField(max_length=64, db_index=True,
                             help_text="Fingerprint of the legacy database, the mapping code and the checksum "
                                       "algorithm: ranges of another scope are never trusted.")
    entity = models.CharField(max_length=20, choices=Entity.choices)
    position = models.PositiveIntegerField(help_text="Order of the range within its entity (legacy key order).")
    after_key = models.CharField(max_length=40, blank=True, help_text="Exclusive lower bound; empty = from the start.")
    last_key = models.CharField(max_length=40, blank=True, help_text="Inclusive upper bound; empty = to the end.")
    legacy_checksum = models.CharField(max_length=120, blank=True, help_text="Empty = not verified equal.")
    modern_checksum = models.CharField(max_length=120, blank=True)
    figures = models.JSONField(default=dict, blank=True, help_text="Its counts, added up when it is skipped.")
    totals = models.JSONField(default=dict, blank=True, help_text="Its share of the legacy control totals.")
    depends = models.JSONField(default=list, blank=True,
                               help_text="Parent states and code holders its outcome relied on.")
    verified_at = models.DateTimeField(null=True, blank=True)
    reconciliation = models.ForeignKey(Reconciliation, null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+", help_text="The reconciliation that last compared it.")

    class Meta:
        ordering = ["scope", "entity", "position"]
        constraints = [models.UniqueConstraint(fields=["scope", "entity", "position"], name="reconciled_range_unique")]

    def __str__(self) -> str:
        return f"{self.entity} ({self.after_key or '…'}, {self.last_key or '…'}]"

    @property
    def verified(self) -> bool:
        return bool(self.legacy_checksum)


# ---------------------------------------------------------------------------------------------
# Shadow reads: live API reads compared with the other side (legacy_migration/shadow.py)
# ---------------------------------------------------------------------------------------------
class ShadowResource(models.TextChoices):
    CUSTOMERS = "customers", "Customers"
    ORDERS = "orders", "Orders"
    INVOICES = "invoices", "Invoices"


class ShadowOrigin(models.TextChoices):
    LIVE = "live", "Live API read (sampled)"
    OFFLINE = "offline", "Replayed by shadow_compare"


class ShadowMismatch(models.Model):
    """A read whose two sides disagreed: what modern serves and what legacy says, as the API shows them.

    One row per record and distinct disagreement: the same difference seen again counts an
    occurrence instead of adding a row, so a hot record that is wrong cannot flood the table.
    """

    resource = models.CharField(max_length=20, choices=ShadowResource.choices, db_index=True)
    record_id = models.BigIntegerField(help_text="The modern id (as in the API's URL).")
    legacy_key = models.CharField(max_length=60, db_index=True)
    fields = models.JSONField(default=dict, help_text="field → {legacy, modern}; lines as lines[N].field")
    legacy = models.JSONField(null=True, blank=True,
                              help_text="The legacy record through the mapping, in the API's shape.")
    modern = models.JSONField(null=True, blank=True, help_text="The modern record as the API served it.")
    digest = models.CharField(max_length=64, help_text="Fingerprint of the differences: same digest, same mismatch.")
    origin = models.CharField(max_length=10, choices=ShadowOrigin.choices, default=ShadowOrigin.LIVE)
    path = models.CharField(max_length=500, blank=True, help_text="The request that last showed it.")
    occurrences = models.PositiveIntegerField(default=1)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-last_seen_at", "-id"]
        verbose_name_plural = "shadow mismatches"
        constraints = [models.UniqueConstraint(fields=["resource", "legacy_key", "digest"],
                                               name="shadow_mismatch_unique")]

    def __str__(self) -> str:
        return f"{self.resource} {self.legacy_key}: {', '.join(self.fields) or '—'}"
