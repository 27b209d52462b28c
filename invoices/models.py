"""Invoices, credit notes, their lines, payments and status history."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from oms.lifecycle import Lifecycle
from oms.money import HALF_CENT, CURRENCIES, CURRENCY_CHOICES, DEFAULT_CURRENCY, AmountField, PriceField, QuantityField
from orders.models import Customer, Order, StatusEvent


class InvoiceKind(models.TextChoices):
    INVOICE = "invoice", "Invoice"
    CREDIT_NOTE = "credit_note", "Credit note"


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ISSUED = "issued", "Issued"
    PAID = "paid", "Paid"
    CREDITED = "credited", "Fully credited"
    VOID = "void", "Void"


I = InvoiceStatus  # noqa: E741
#: The invoice pipeline. Paid and credited are reached through payments and credit notes, never
#: set by hand; an issued invoice is never edited or deleted, only paid, credited or voided.
INVOICE_LIFECYCLE = Lifecycle(
    "invoice",
    dict(I.choices),
    {
        I.DRAFT: {I.ISSUED, I.VOID},
        I.ISSUED: {I.PAID, I.CREDITED, I.VOID},
        I.PAID: set(),
        I.CREDITED: set(),
        I.VOID: set(),
    },
)

#: Numbering series: invoices and credit notes are numbered apart, each gapless per year.
SERIES_BY_KIND = {InvoiceKind.INVOICE: "INV", InvoiceKind.CREDIT_NOTE: "CN"}


class InvoiceQuerySet(models.QuerySet):
    def invoices(self) -> InvoiceQuerySet:
        """Invoices proper, without credit notes."""
        return self.filter(kind=InvoiceKind.INVOICE)

    def credit_notes(self) -> InvoiceQuerySet:
        return self.filter(kind=InvoiceKind.CREDIT_NOTE)

    def drafts(self) -> InvoiceQuerySet:
        """Not yet issued: no number, still editable."""
        return self.filter(status=I.DRAFT)

    def outstanding(self) -> InvoiceQuerySet:
        """Issued invoices with money still owed on them."""
        return self.invoices().filter(status=I.ISSUED).filter(
            total__gt=F("paid_amount") + F("credited_amount"))

    def overdue(self, *, now=None) -> InvoiceQuerySet:
        """Outstanding invoices past their due date."""
        return self.outstanding().filter(due_at__lt=now or timezone.now())

    def live_for_order(self, order) -> InvoiceQuerySet:
        """The invoices that count as 'this order is invoiced': not void, not fully reversed by credit notes."""
        return self.invoices().filter(order=order).exclude(status__in=[I.VOID, I.CREDITED])

    def for_list(self) -> InvoiceQuerySet:
        return self.select_related("customer", "order")


class Invoice(models.Model):
    number = models.CharField(max_length=20, unique=True, null=True, blank=True, editable=False,
                              help_text="Assigned when the invoice is issued; migrated invoices keep theirs.")
    kind = models.CharField(max_length=20, choices=InvoiceKind.choices, default=InvoiceKind.INVOICE,
                            editable=False)
    series = models.CharField(max_length=10, blank=True, editable=False)
    fiscal_year = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    sequence_number = models.PositiveIntegerField(null=True, blank=True, editable=False)
    legacy_id = models.CharField("legacy INV_NO", max_length=12, unique=True, null=True, blank=True,
                                 editable=False)

    # Indexed by invoice_customer_idx, whose leading column it is.
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invoices", db_index=False)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, null=True, blank=True, related_name="invoices",
                              help_text="Empty for a manual invoice.")
    legacy_order_number = models.IntegerField(
        "legacy ORD_NO", null=True, blank=True, editable=False,
        help_text="The legacy order this invoice billed, kept even where that order was not migrated.")
    credited_invoice = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True,
                                         related_name="credit_notes", editable=False)

    status = models.CharField(max_length=20, choices=InvoiceStatus.choices, default=I.DRAFT, editable=False)
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES, default=DEFAULT_CURRENCY)
    invoiced_at = models.DateTimeField("invoice date", null=True, blank=True)
    due_at = models.DateTimeField("due date", null=True, blank=True)

    discount = AmountField(editable=False)
    net = AmountField("net amount", editable=False)
    tax = AmountField()
    total = AmountField(editable=False)
    paid_amount = AmountField(editable=False)
    paid_at = models.DateTimeField("date fully paid", null=True, blank=True, editable=False)
    credited_amount = AmountField(editable=False, help_text="Sum of the issued credit notes against it.")

    reason = models.TextField(blank=True, help_text="Why a credit note was raised.")
    void_reason = models.TextField(blank=True, editable=False)
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)  # indexed by invoice_updated_idx

    objects = InvoiceQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [
            ("issue_invoice", "Can issue invoices"),
            ("record_payment", "Can record payments"),
            ("void_invoice", "Can void invoices"),
            ("credit_invoice", "Can raise credit notes"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=InvoiceStatus.values), name="invoice_status_valid"),
            models.CheckConstraint(condition=Q(kind__in=InvoiceKind.values), name="invoice_kind_valid"),
            models.CheckConstraint(condition=Q(currency__in=CURRENCIES), name="invoice_currency_known"),
            models.CheckConstraint(
                condition=Q(discount__gte=0) & Q(net__gte=0) & Q(tax__gte=0) & Q(total__gte=0)
                & Q(paid_amount__gte=0) & Q(credited_amount__gte=0),
                name="invoice_amounts_gte_0",
            ),
            # A draft has no number; anything issued here has one (migrated drafts keep theirs).
            models.CheckConstraint(
                condition=Q(status=I.DRAFT) | Q(number__isnull=False) | Q(status=I.VOID),
                name="invoice_issued_has_number",
            ),
            models.CheckConstraint(
                condition=Q(kind=InvoiceKind.INVOICE, credited_invoice__isnull=True)
                | Q(kind=InvoiceKind.CREDIT_NOTE, credited_invoice__isnull=False),
                name="invoice_credit_note_points_at_invoice",
            ),
            # Invoices made here always add up (within half a cent: see order_total_adds_up);
            # migrated ones keep the legacy amounts.
            models.CheckConstraint(
                condition=Q(legacy_id__isnull=False)
                | Q(total__gt=F("net") + F("tax") - HALF_CENT, total__lt=F("net") + F("tax") + HALF_CENT),
                name="invoice_total_adds_up",
            ),
            models.UniqueConstraint(
                fields=["series", "fiscal_year", "sequence_number"],
                condition=Q(sequence_number__isnull=False),
                name="invoice_number_unique_per_series_year",
            ),
            # At most one live invoice per order (the service says why; this makes it a fact).
            # Migrated invoices are exempt: the legacy system did bill some orders twice.
            models.UniqueConstraint(
                fields=["order"],
                condition=Q(kind=InvoiceKind.INVOICE, legacy_id__isnull=True, order__isnull=False)
                & ~Q(status__in=[I.VOID, I.CREDITED]),
                name="invoice_one_live_per_order",
            ),
        ]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="invoice_created_desc_idx"),
            models.Index(fields=["status", "due_at"], name="invoice_status_due_idx"),
            models.Index(fields=["customer", "-created_at"], name="invoice_customer_idx"),
            # The admin's date drill-down and the API's date filters; the search by legacy ORD_NO.
            models.Index(fields=["-invoiced_at", "-id"], name="invoice_invoiced_desc_idx"),
            models.Index(fields=["legacy_order_number"], name="invoice_legacy_order_idx"),
            models.Index(fields=["updated_at", "id"], name="invoice_updated_idx"),
        ]

    def __str__(self) -> str:
        label = InvoiceKind(self.kind).label
        return f"{label} {self.number}" if self.number else f"Draft {label.lower()} #{self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("admin:invoices_invoice_change", args=[self.pk])

    @property
    def balance_due(self):
        return self.total - self.paid_amount - self.credited_amount

    @property
    def creditable_amount(self):
        """How much can still be credited: what was billed less what earlier credit notes took back."""
        return self.total - self.credited_amount

    @property
    def is_overdue(self) -> bool:
        return (self.status == I.ISSUED and self.due_at is not None and self.due_at < timezone.now()
                and self.balance_due > 0)


class InvoiceLine(models.Model):
    # Indexed by invoice_line_number_unique, whose first column it is (see OrderLine.order).
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines", db_index=False)
    line_number = models.PositiveSmallIntegerField()
    sku = models.CharField("SKU", max_length=20, blank=True)
    description = models.CharField(max_length=200, blank=True)
    quantity = QuantityField()
    unit_price = PriceField()
    amount = AmountField(editable=False)

    class Meta:
        ordering = ["invoice", "line_number"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "line_number"], name="invoice_line_number_unique"),
            # Prices and amounts may be negative: a discount line ("Order discount", −12.50) is how
            # legacy invoices show an order-level discount. The invoice's own totals stay >= 0.
            models.CheckConstraint(condition=Q(quantity__gte=0), name="invoice_line_quantity_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.line_number}: {self.description}"


class Payment(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payments")
    amount = AmountField()
    received_at = models.DateTimeField(default=timezone.now)
    reference = models.CharField(max_length=60, blank=True, help_text="Bank reference, cheque number, …")
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    recorded_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["received_at", "id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_gt_0")]

    def __str__(self) -> str:
        return f"{self.amount} on {self.received_at:%Y-%m-%d}"


class InvoiceStatusEvent(StatusEvent):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="status_events")

    class Meta(StatusEvent.Meta):
        verbose_name = "invoice status event"
