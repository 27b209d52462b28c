"""Customers, orders and their lines, and the order status history."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from oms.lifecycle import Lifecycle
from oms.money import (
    CURRENCIES,
    HALF_CENT,
    CURRENCY_CHOICES,
    DEFAULT_CURRENCY,
    AmountField,
    PercentField,
    PriceField,
    QuantityField,
)


class StatusEvent(models.Model):
    """One status change of a record: who, when, from, to, why. Never edited once written."""

    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(blank=True)

    class Meta:
        abstract = True
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.from_status or '—'} → {self.to_status} at {self.at:%Y-%m-%d %H:%M}"


# ---------------------------------------------------------------------------------------------
# Customers
# ---------------------------------------------------------------------------------------------
class CustomerStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    INACTIVE = "inactive", "Inactive"
    ON_HOLD = "on_hold", "On credit hold"


class CustomerQuerySet(models.QuerySet):
    def active(self) -> CustomerQuerySet:
        """Customers that may place orders."""
        return self.filter(status=CustomerStatus.ACTIVE)

    def on_credit_hold(self) -> CustomerQuerySet:
        """Customers whose orders must not be confirmed until finance releases them."""
        return self.filter(status=CustomerStatus.ON_HOLD)

    def sharing_email(self) -> CustomerQuerySet:
        """Customers whose billing mailbox is also another customer's (allowed, but worth a look)."""
        shared = (
            self.model.objects.exclude(email=None)
            .values("email")
            .annotate(n=models.Count("id"))
            .filter(n__gt=1)
            .values("email")
        )
        return self.filter(email__in=shared)


class Customer(models.Model):
    legacy_id = models.IntegerField(
        "legacy CUST_ID", unique=True, null=True, blank=True, editable=False,
        help_text="Key in the legacy CUSTMAST table; empty for customers created here.",
    )
    code = models.CharField(max_length=20, unique=True, null=True, help_text="Business code, e.g. C0001234.")
    name = models.CharField(max_length=100)
    email = models.EmailField(max_length=254, null=True, blank=True, db_index=True,
                              help_text="Billing mailbox; several customers may share one.")
    phone = models.CharField(max_length=30, blank=True)
    address_line1 = models.CharField("address line 1", max_length=100, blank=True)
    address_line2 = models.CharField("address line 2", max_length=100, blank=True)
    city = models.CharField(max_length=60, blank=True)
    state = models.CharField(max_length=2, blank=True)
    postal_code = models.CharField(max_length=10, blank=True)
    country = models.CharField(max_length=2, default="US", help_text="ISO 3166-1 alpha-2")
    status = models.CharField(max_length=20, choices=CustomerStatus.choices, default=CustomerStatus.ACTIVE,
                              db_index=True)
    credit_limit = AmountField("credit limit (USD)", null=True, blank=True, default=None)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    legacy_updated_at = models.DateTimeField("legacy LAST_UPD_DT", null=True, blank=True, editable=False)

    objects = CustomerQuerySet.as_manager()

    class Meta:
        ordering = ["code", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=CustomerStatus.values), name="customer_status_valid"),
            models.CheckConstraint(
                condition=Q(credit_limit__isnull=True) | Q(credit_limit__gte=0), name="customer_credit_limit_gte_0"),
        ]
        indexes = [models.Index(fields=["name"], name="customer_name_idx")]

    def __str__(self) -> str:
        return f"{self.code or '(no code)'} {self.name}"

    def get_absolute_url(self) -> str:
        return reverse("admin:orders_customer_change", args=[self.pk])


# ---------------------------------------------------------------------------------------------
# Orders
# ---------------------------------------------------------------------------------------------
class OrderStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    CONFIRMED = "confirmed", "Confirmed"
    PROCESSING = "processing", "Processing"
    SHIPPED = "shipped", "Shipped"
    DELIVERED = "delivered", "Delivered"
    CANCELLED = "cancelled", "Cancelled"
    ON_HOLD = "on_hold", "On hold"


S = OrderStatus
#: The order pipeline. Holding and releasing are moves too: release returns the order to the
#: status it was held from (Order.status_before_hold), which the services check against this table.
ORDER_LIFECYCLE = Lifecycle(
    "order",
    dict(S.choices),
    {
        S.PENDING: {S.CONFIRMED, S.ON_HOLD, S.CANCELLED},
        S.CONFIRMED: {S.PROCESSING, S.ON_HOLD, S.CANCELLED},
        S.PROCESSING: {S.SHIPPED, S.ON_HOLD, S.CANCELLED},
        S.SHIPPED: {S.DELIVERED},
        S.ON_HOLD: {S.PENDING, S.CONFIRMED, S.PROCESSING, S.CANCELLED},
        S.DELIVERED: set(),
        S.CANCELLED: set(),
    },
)
#: Statuses from which an order can be invoiced: confirmed, and every step after it.
INVOICEABLE_ORDER_STATUSES = (S.CONFIRMED, S.PROCESSING, S.SHIPPED, S.DELIVERED)
#: Only a pending order's lines and amounts may be changed; after that they are a commitment.
EDITABLE_ORDER_STATUSES = (S.PENDING,)


class OrderQuerySet(models.QuerySet):
    def open(self) -> OrderQuerySet:
        """Orders still moving through the pipeline (not delivered, not cancelled)."""
        return self.exclude(status__in=[S.DELIVERED, S.CANCELLED])

    def on_hold(self) -> OrderQuerySet:
        """Orders someone has stopped and must release."""
        return self.filter(status=S.ON_HOLD)

    def ready_to_invoice(self) -> OrderQuerySet:
        """Confirmed-or-later orders that have no live (non-void) invoice yet."""
        from invoices.models import Invoice

        live_invoice = Invoice.objects.live_for_order(models.OuterRef("pk"))
        return self.filter(status__in=INVOICEABLE_ORDER_STATUSES).exclude(models.Exists(live_invoice))

    def for_list(self) -> OrderQuerySet:
        """What the order lists show: the customer in the same query, the notes left behind."""
        return self.select_related("customer").defer("notes")


class Order(models.Model):
    number = models.CharField(max_length=20, unique=True, editable=False,
                              help_text="The order number staff and customers quote.")
    legacy_id = models.IntegerField("legacy ORD_NO", unique=True, null=True, blank=True, editable=False)
    # Indexed by order_customer_date_idx, whose leading column it is.
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders", db_index=False)
    status = models.CharField(max_length=20, choices=OrderStatus.choices, default=OrderStatus.PENDING,
                              editable=False)
    status_before_hold = models.CharField(max_length=20, choices=OrderStatus.choices, blank=True,
                                          editable=False)
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES, default=DEFAULT_CURRENCY)
    # Indexed by order_ordered_desc_idx, whose leading column it is (a range scan reads it either way).
    ordered_at = models.DateTimeField(default=timezone.now)
    requested_ship_at = models.DateTimeField("requested ship date", null=True, blank=True)

    subtotal = AmountField(editable=False)
    discount = AmountField("order discount")
    tax = AmountField()
    freight = AmountField()
    total = AmountField(editable=False)

    ship_name = models.CharField(max_length=100, blank=True)
    ship_address_line1 = models.CharField("ship-to address line 1", max_length=100, blank=True)
    ship_address_line2 = models.CharField("ship-to address line 2", max_length=100, blank=True)
    ship_city = models.CharField(max_length=100, blank=True)
    ship_state = models.CharField(max_length=2, blank=True)
    ship_postal_code = models.CharField(max_length=10, blank=True)
    ship_country = models.CharField(max_length=2, default="US")
    # Indexed by order_po_prefix_idx (pattern operators serve = as well as LIKE 'x%').
    po_number = models.CharField("PO number", max_length=30, blank=True)
    notes = models.TextField(blank=True)

    legacy_created_by = models.CharField("legacy CREATED_BY", max_length=30, blank=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)  # indexed by order_updated_idx
    legacy_updated_at = models.DateTimeField("legacy LAST_UPD_DT", null=True, blank=True, editable=False)

    objects = OrderQuerySet.as_manager()

    class Meta:
        ordering = ["-ordered_at", "-id"]
        permissions = [("transition_order", "Can move orders through their life cycle")]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=OrderStatus.values), name="order_status_valid"),
            models.CheckConstraint(condition=Q(currency__in=CURRENCIES), name="order_currency_known"),
            models.CheckConstraint(
                condition=Q(subtotal__gte=0) & Q(discount__gte=0) & Q(tax__gte=0) & Q(freight__gte=0)
                & Q(total__gte=0),
                name="order_amounts_gte_0",
            ),
            # Orders made here always add up. Migrated ones keep the legacy amounts as they are
            # (the contract: legacy amounts are the financial truth, even when they disagree).
            # "Within half a cent" is exact for 2-place columns on PostgreSQL, and survives SQLite
            # (the demo), which evaluates the check in floating point.
            models.CheckConstraint(
                condition=Q(legacy_id__isnull=False)
                | Q(total__gt=F("subtotal") - F("discount") + F("tax") + F("freight") - HALF_CENT,
                    total__lt=F("subtotal") - F("discount") + F("tax") + F("freight") + HALF_CENT),
                name="order_total_adds_up",
            ),
        ]
        indexes = [
            models.Index(fields=["-ordered_at", "-id"], name="order_ordered_desc_idx"),
            models.Index(fields=["customer", "-ordered_at"], name="order_customer_date_idx"),
            models.Index(fields=["status", "-ordered_at"], name="order_status_date_idx"),
            # The API's "updated since" feed walks (updated_at, id) with a cursor.
            models.Index(fields=["updated_at", "id"], name="order_updated_idx"),
            # Prefix search ("PO-7") with LIKE 'x%': a plain B-tree cannot serve LIKE under a
            # non-C collation; the pattern operator class can (ignored off PostgreSQL). `number`
            # needs none of its own: Django gives a unique CharField a pattern index (…_like).
            models.Index(fields=["po_number"], name="order_po_prefix_idx", opclasses=["varchar_pattern_ops"]),
        ]

    def __str__(self) -> str:
        return f"Order {self.number}"

    def get_absolute_url(self) -> str:
        return reverse("admin:orders_order_change", args=[self.pk])

    @property
    def is_editable(self) -> bool:
        return self.status in EDITABLE_ORDER_STATUSES

    def available_transitions(self) -> list[str]:
        moves = ORDER_LIFECYCLE.available_transitions(self.status)
        if self.status == S.ON_HOLD:
            # Release goes back where the order came from, or it is cancelled.
            # A migrated hold does not say where it came from: it is released to pending.
            return [s for s in (self.status_before_hold or S.PENDING, S.CANCELLED) if s in moves]
        return sorted(moves)


class OrderLine(models.Model):
    # Indexed by order_line_number_unique, whose first column it is: a second index on it
    # would only be one more to write for each of the millions of migrated lines.
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines", db_index=False)
    line_number = models.PositiveSmallIntegerField()
    sku = models.CharField("SKU", max_length=20)  # indexed by order_line_sku_idx
    description = models.CharField(max_length=200, blank=True)
    quantity = QuantityField()
    unit_price = PriceField()
    discount_percent = PercentField("discount %")
    line_total = AmountField(editable=False)

    class Meta:
        ordering = ["order", "line_number"]
        constraints = [
            models.UniqueConstraint(fields=["order", "line_number"], name="order_line_number_unique"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_line_quantity_gt_0"),
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="order_line_unit_price_gte_0"),
            models.CheckConstraint(condition=Q(discount_percent__gte=0) & Q(discount_percent__lte=100),
                                   name="order_line_discount_0_100"),
            models.CheckConstraint(condition=Q(line_total__gte=0), name="order_line_total_gte_0"),
        ]
        # One index for "which orders carry this SKU" (=) and SKU prefix search (LIKE 'x%'):
        # pattern operators serve both; db_index=True would add a second, plain one.
        indexes = [models.Index(fields=["sku"], name="order_line_sku_idx", opclasses=["varchar_pattern_ops"])]

    def __str__(self) -> str:
        return f"{self.line_number}: {self.sku} × {self.quantity}"


class OrderStatusEvent(StatusEvent):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="status_events")

    class Meta(StatusEvent.Meta):
        verbose_name = "order status event"


class NumberSequence(models.Model):
    """A counter per (series, year). Incremented under a row lock so numbers are gapless.

    Invoices take their numbers from here (INV, CN), and so do orders created in this system (SO).
    The row lock is taken in oms.locking; a rolled-back transaction rolls the counter back too,
    which is what makes the numbering gapless.
    """

    series = models.CharField(max_length=10)
    year = models.PositiveSmallIntegerField()
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["series", "year"], name="number_sequence_unique")]

    def __str__(self) -> str:
        return f"{self.series}-{self.year}: {self.last_number}"
