"""Demo data for `make demo`: users, customers, orders and invoices made through the services.

Nothing here writes an order or an invoice by hand: every record is created and moved by the
same service functions the admin and the API call, so the demo shows what the rules allow and
nothing else. The generator:

1. Makes the demo users (a superuser and one user per role), unless they exist.
2. Skips everything else if demo customers exist (``reset=True`` deletes them and their orders
   and invoices first), so running it twice never duplicates data.
3. Plans customers and, for every order, a story over the last two years: its final status,
   holds and releases, and how it was billed (paid, paid in instalments, partly paid, overdue,
   credited in full or in part, voided and billed again). Manual invoices get stories too.
   The first stories cycle through every case so that even a small run shows all of them.
4. Turns each story into timed steps and runs all steps in time order, so order and invoice
   numbers are handed out chronologically, as they would have been.
5. Re-dates the history. The services stamp status events, creation times and "updated at"
   with the wall clock; every stamp written while a step ran is mapped back to the planned
   time of that step (``_Clock``), so the history reads as two years of business, not as one
   minute of seeding. Amounts, statuses and numbers are never touched.

Deterministic for a given seed: the same seed gives the same customers, orders, amounts,
statuses and numbers; only the dates move with today's date.
"""

from __future__ import annotations

import bisect
import datetime as dt
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth.models import Group, User
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from invoices import services as invoice_services
from invoices.models import Invoice, InvoiceStatus, InvoiceStatusEvent, Payment
from oms.money import ZERO, line_amount, round_amount
from orders import services as order_services
from orders.models import Customer, CustomerStatus, NumberSequence, Order, OrderStatus, OrderStatusEvent

DEMO_PASSWORD = "demo-oms"
#: The demo superuser, then one user per role group.
DEMO_USERS = [
    ("demo", None),
    ("sales", "Sales"),
    ("billing", "Billing"),
    ("operator", "Migration operators"),
    ("auditor", "Auditors"),
]
#: Demo customers' codes are C9000001, C9000002, …: the legacy format (C + 7 digits) in a range
#: the legacy data does not use, which is how a later run recognises (and --reset finds) them.
DEMO_CODE_PREFIX = "C9"
HISTORY_DAYS = 730

S = OrderStatus
I = InvoiceStatus  # noqa: E741

# ---------------------------------------------------------------------------------------------
# Word lists (no Faker: `make demo` installs only the runtime requirements)
# ---------------------------------------------------------------------------------------------
NAME_HEADS = [
    "Harbor", "Summit", "Cedar", "Northgate", "Bluewater", "Ironwood", "Prairie", "Lakeside", "Redstone",
    "Granite", "Maple", "Silverline", "Riverbend", "Oakmont", "Westfield", "Pinecrest", "Copperfield",
    "Brightwater", "Hillside", "Eastbrook", "Keystone", "Sterling", "Fairview", "Highland", "Kessler",
    "Morrison", "Delgado", "Whitaker", "Nakamura", "O'Brien", "Lindqvist", "Okafor", "Rossi", "Hartmann",
    "Carver", "Beaumont", "Yates", "Quinlan", "Abernathy", "Castillo",
]
NAME_TRADES = [
    "Hardware", "Tool & Supply", "Building Supply", "Plumbing", "Electric", "Industrial", "Farm & Garden",
    "Marine Supply", "Auto Parts", "Facilities", "Restaurant Supply", "Machine Works", "Fasteners",
    "Packaging", "Janitorial", "Home Center", "Contractors", "Lumber", "Fabrication", "Office Supply",
    "Landscaping", "Hospitality", "Cold Storage", "Bakery Supply", "Mechanical",
]
NAME_SUFFIXES = ["Inc.", "LLC", "Co.", "Ltd.", "Corp.", "& Sons", "Group", "Partners"]
STREETS = ["Main St", "Commerce Dr", "Industrial Pkwy", "Market St", "Harbor Rd", "Mill Rd", "Depot St",
           "Enterprise Way", "Riverside Ave", "Station Rd", "Warehouse Ln", "Union Ave"]
#: (city, state, postal code, country, currency, sales-tax rate)
PLACES = [
    ("New York", "NY", "10001", "US", "USD", Decimal("0.08875")),
    ("Buffalo", "NY", "14202", "US", "USD", Decimal("0.08750")),
    ("Newark", "NJ", "07102", "US", "USD", Decimal("0.06625")),
    ("Boston", "MA", "02110", "US", "USD", Decimal("0.06250")),
    ("Philadelphia", "PA", "19103", "US", "USD", Decimal("0.08000")),
    ("Pittsburgh", "PA", "15222", "US", "USD", Decimal("0.07000")),
    ("Baltimore", "MD", "21201", "US", "USD", Decimal("0.06000")),
    ("Richmond", "VA", "23219", "US", "USD", Decimal("0.06000")),
    ("Charlotte", "NC", "28202", "US", "USD", Decimal("0.07250")),
    ("Atlanta", "GA", "30303", "US", "USD", Decimal("0.08900")),
    ("Orlando", "FL", "32801", "US", "USD", Decimal("0.06500")),
    ("Columbus", "OH", "43215", "US", "USD", Decimal("0.07500")),
    ("Detroit", "MI", "48226", "US", "USD", Decimal("0.06000")),
    ("Chicago", "IL", "60601", "US", "USD", Decimal("0.10250")),
    ("Milwaukee", "WI", "53202", "US", "USD", Decimal("0.05500")),
    ("Minneapolis", "MN", "55401", "US", "USD", Decimal("0.08025")),
    ("St. Louis", "MO", "63101", "US", "USD", Decimal("0.09679")),
    ("Dallas", "TX", "75201", "US", "USD", Decimal("0.08250")),
    ("Houston", "TX", "77002", "US", "USD", Decimal("0.08250")),
    ("Denver", "CO", "80202", "US", "USD", Decimal("0.08810")),
    ("Phoenix", "AZ", "85004", "US", "USD", Decimal("0.08600")),
    ("Portland", "OR", "97204", "US", "USD", ZERO),
    ("Seattle", "WA", "98101", "US", "USD", Decimal("0.10350")),
    ("Wilmington", "DE", "19801", "US", "USD", ZERO),
    ("Toronto", "ON", "M5H 2N2", "CA", "CAD", Decimal("0.13000")),
    ("Montreal", "QC", "H2Y 1C6", "CA", "CAD", Decimal("0.14975")),
    ("Monterrey", "NL", "64000", "MX", "MXN", Decimal("0.16000")),
    ("Manchester", "", "M1 1AE", "GB", "GBP", Decimal("0.20000")),
    ("Rotterdam", "", "3011 AA", "NL", "EUR", Decimal("0.21000")),
]
#: How often each place comes up: mostly the US north-east, a few foreign accounts.
PLACE_WEIGHTS = [6, 2, 3, 3, 3, 2, 2, 2, 2, 3, 2, 2, 2, 3, 1, 1, 1, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
#: (SKU, description, unit price, sold by weight)
CATALOG = [
    ("HW-HAM-16", "Claw hammer 16 oz", "18.9000", False),
    ("HW-SCR-100", "Wood screws #8 x 1-1/4\", box of 100", "7.4900", False),
    ("HW-BLT-M10", "Hex bolt M10 x 60, zinc", "0.6200", False),
    ("HW-ANC-25", "Concrete anchors, pack of 25", "14.2500", False),
    ("HW-HNG-3", "Butt hinge 3\", satin nickel", "4.1500", False),
    ("HW-LCK-KD", "Keyed deadbolt, grade 2", "42.0000", False),
    ("TL-DRL-20V", "Cordless drill 20V with 2 batteries", "149.0000", False),
    ("TL-SAW-CIRC", "Circular saw 7-1/4\"", "119.5000", False),
    ("TL-LVL-48", "Aluminium level 48\"", "36.7500", False),
    ("TL-TAPE-25", "Tape measure 25 ft", "12.9900", False),
    ("TL-BIT-SET", "Drill bit set, 29 pieces", "27.4000", False),
    ("EL-WIRE-12", "Copper wire 12 AWG, 250 ft", "96.3000", False),
    ("EL-BRK-20A", "Circuit breaker 20 A", "9.8500", False),
    ("EL-LED-4FT", "LED shop light 4 ft", "31.2000", False),
    ("EL-OUT-GFCI", "GFCI outlet, 15 A", "16.4500", False),
    ("PL-PVC-2-10", "PVC pipe 2\" x 10 ft", "11.3000", False),
    ("PL-VLV-BALL", "Ball valve 3/4\", brass", "13.9000", False),
    ("PL-TAPE-PTFE", "PTFE thread tape", "1.2500", False),
    ("PL-WH-50", "Water heater 50 gal", "689.0000", False),
    ("BS-LBR-2X4", "Lumber 2x4x8 SPF", "4.8700", False),
    ("BS-PLY-34", "Plywood 3/4\" 4x8 sheet", "58.9000", False),
    ("BS-DRY-12", "Drywall 1/2\" 4x8 sheet", "14.6000", False),
    ("BS-CEM-80", "Concrete mix 80 lb bag", "6.4500", False),
    ("BS-INS-R13", "Insulation R-13 roll", "49.9000", False),
    ("PT-INT-GAL", "Interior paint, eggshell, 1 gal", "38.0000", False),
    ("PT-PRM-5G", "Primer 5 gal", "119.0000", False),
    ("PT-ROLL-9", "Roller kit 9\"", "11.7500", False),
    ("JN-GLV-NIT", "Nitrile gloves, box of 100", "15.9900", False),
    ("JN-TWL-CASE", "Paper towels, case of 12", "32.4000", False),
    ("JN-DEG-GAL", "Degreaser concentrate 1 gal", "21.5000", False),
    ("BK-NAIL-16D", "Common nails 16d, bulk", "3.1900", True),
    ("BK-SCR-DECK", "Deck screws, bulk", "7.9500", True),
    ("BK-CHAIN-38", "Proof coil chain 3/8\", by the kg", "8.7000", True),
    ("BK-ROPE-PP", "Polypropylene rope, by the kg", "6.2000", True),
    ("BK-SALT-ICE", "Ice melt, bulk", "0.9800", True),
    ("BK-SEED-GR", "Grass seed mix, bulk", "9.4000", True),
    ("SF-VEST-HV", "Hi-vis safety vest", "8.5000", False),
    ("SF-GLS-CLR", "Safety glasses, clear", "4.9500", False),
    ("SF-HAT-HD", "Hard hat, type I", "24.0000", False),
    ("SF-KIT-FA", "First aid kit, 50 person", "64.0000", False),
]
MANUAL_SERVICES = [
    ("Installation labour", "85.0000"), ("Site survey", "250.0000"), ("Restocking fee", "45.0000"),
    ("Expedited handling", "35.0000"), ("Equipment rental, per day", "120.0000"),
    ("Staff training session", "400.0000"), ("Key cutting and re-keying", "12.5000"),
    ("Annual maintenance contract", "1200.0000"),
]
HOLD_REASONS = ["Ship-to address could not be verified", "Customer asked us to wait for their site to open",
                "Stock check on a large line", "Customer disputes the quoted price",
                "Waiting for a revised PO from the customer"]
RELEASE_REASONS = ["Address confirmed by phone", "Customer confirmed the delivery window", "Stock confirmed",
                   "Price agreed", "Revised PO received"]
CANCEL_REASONS = ["Customer changed their mind", "Duplicate of another order",
                  "Out of stock; customer declined a backorder", "Customer found a better price elsewhere",
                  "Ordered on the wrong account", "Project cancelled by the customer"]
VOID_REASONS = ["Billed to the wrong address", "Wrong tax rate applied", "Issued before the order was final",
                "Customer asked for a separate invoice per site"]
CREDIT_REASONS = ["Goods damaged in transit", "Part of the order returned", "Price adjustment agreed with the customer",
                  "Short shipment", "Goodwill gesture after a late delivery"]


# ---------------------------------------------------------------------------------------------
# Result
# ---------------------------------------------------------------------------------------------
@dataclass
class DemoReport:
    """What a run did, for the command to print."""

    created: bool
    users_created: list[str] = field(default_factory=list)
    deleted: Counter = field(default_factory=Counter)
    counts: dict[str, Counter] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = []
        for name, counter in self.counts.items():
            detail = ", ".join(f"{k} {v}" for k, v in sorted(counter.items()) if k != "total")
            out.append(f"{name}: {counter['total']}" + (f" ({detail})" if detail else ""))
        return out


class DemoDataError(Exception):
    """The demo cannot be built here (e.g. the database is not migrated)."""


def demo_data_exists() -> bool:
    return Customer.objects.filter(code__startswith=DEMO_CODE_PREFIX, legacy_id=None).exists()


def seed_demo(*, customers: int = 200, orders: int = 1500, seed: int = 2024, reset: bool = False,
              progress: Callable[[str], None] = lambda message: None) -> DemoReport:
    """Create the demo users and (unless already there) the demo data. See the module docstring."""
    if customers < 1 or orders < 0:
        raise ValueError("Need at least one customer and a non-negative number of orders.")
    with transaction.atomic():
        users, created_users = _ensure_users()
    report = DemoReport(created=False, users_created=created_users)
    if reset:
        report.deleted = delete_demo_data()
        progress("Deleted the earlier demo data: " + ", ".join(f"{v} {k}" for k, v in report.deleted.items()))
    if demo_data_exists():
        progress("Demo data already present; nothing created (use --reset to build it again).")
    else:
        # One transaction: an interrupted run leaves nothing behind, so the next run starts clean
        # (and on SQLite one commit instead of thousands is most of the speed).
        with transaction.atomic():
            _Generator(users=users, customers=customers, orders=orders, seed=seed, progress=progress).run()
        report.created = True
    report.counts = demo_counts()
    return report


def _ensure_users() -> tuple[dict[str, User], list[str]]:
    users, created = {}, []
    groups = {name: Group.objects.filter(name=name).first() for _, name in DEMO_USERS if name}
    missing = [name for name, group in groups.items() if group is None]
    if missing:
        raise DemoDataError(f"Role groups missing ({', '.join(missing)}): run `manage.py migrate` first.")
    for username, role in DEMO_USERS:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User(username=username, email=f"{username}@demo.example.com", is_staff=True,
                        is_superuser=role is None, first_name=username.capitalize())
            user.set_password(DEMO_PASSWORD)
            user.save()
            created.append(username)
        if role:
            user.groups.add(groups[role])
        users[username] = user
    return users, created


@transaction.atomic
def delete_demo_data() -> Counter:
    """Delete the demo customers with their orders, invoices and payments (never other data).

    Deletes in the order the PROTECT foreign keys require: payments, credit notes, invoices,
    orders, customers. Number counters restart only when no other order or invoice is left,
    since real records' numbers must never be handed out twice.
    """
    demo_customers = Customer.objects.filter(code__startswith=DEMO_CODE_PREFIX, legacy_id=None)
    invoices = Invoice.objects.filter(customer__in=demo_customers)
    deleted = Counter()
    deleted["payments"] = Payment.objects.filter(invoice__in=invoices).delete()[1].get("invoices.Payment", 0)
    deleted["credit notes"] = invoices.credit_notes().delete()[1].get("invoices.Invoice", 0)
    deleted["invoices"] = invoices.delete()[1].get("invoices.Invoice", 0)
    deleted["orders"] = Order.objects.filter(customer__in=demo_customers).delete()[1].get("orders.Order", 0)
    deleted["customers"] = demo_customers.delete()[1].get("orders.Customer", 0)
    if not Order.objects.exists() and not Invoice.objects.exists():
        NumberSequence.objects.all().delete()
    return deleted


def demo_counts() -> dict[str, Counter]:
    """Counts by status of what the demo is about, for the progress output and the tests."""
    customers = Counter(Customer.objects.values_list("status", flat=True))
    customers["sharing an email"] = Customer.objects.sharing_email().count()
    orders = Counter(Order.objects.values_list("status", flat=True))
    invoices = Counter(Invoice.objects.invoices().values_list("status", flat=True))
    invoices["manual"] = Invoice.objects.invoices().filter(order=None).count()
    invoices["partly paid"] = Invoice.objects.outstanding().filter(paid_amount__gt=0).count()
    invoices["overdue"] = Invoice.objects.overdue().count()
    notes = Counter()
    for note in Invoice.objects.credit_notes().select_related("credited_invoice"):
        notes["full" if note.total == note.credited_invoice.total else "partial"] += 1
    payments = Counter(total=Payment.objects.count())
    for counter, total in ((customers, sum(v for k, v in customers.items() if k in CustomerStatus.values)),
                           (orders, sum(orders.values())), (invoices, sum(v for k, v in invoices.items()
                                                                            if k in I.values)),
                           (notes, sum(notes.values()))):
        counter["total"] = total
    return {"customers": customers, "orders": orders, "invoices": invoices, "credit notes": notes,
            "payments": payments}


# ---------------------------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------------------------
@dataclass
class _CustomerPlan:
    code: str
    name: str
    email: str | None
    place: tuple
    street: str
    credit_limit: Decimal | None
    weight: float
    final_status: str = CustomerStatus.ACTIVE
    #: When the customer left active (credit hold or inactive); None for one that stays active.
    changed_at: dt.datetime | None = None
    record: Customer | None = None


@dataclass
class _OrderStory:
    final: str
    billing: str
    ordered_at: dt.datetime
    lines: list[order_services.OrderLineInput]
    #: Seeds the story's own generator, so planning it twice (for the customer check, then for
    #: real) gives the same moments.
    seed: int = 0
    customer: _CustomerPlan | None = None
    header: dict = field(default_factory=dict)
    #: When the last step that needs an active customer (confirming) happens, and the last step at all.
    last_confirm_at: dt.datetime | None = None
    last_step_at: dt.datetime | None = None
    order: Order | None = None
    invoice: Invoice | None = None


@dataclass(order=True)
class _Step:
    at: dt.datetime
    seq: int
    action: Callable[[], None] = field(compare=False)
    kind: str = field(compare=False, default="")


class _Clock:
    """Maps a wall-clock stamp written during the run to the planned time of the step running then."""

    def __init__(self) -> None:
        self.started = timezone.now()
        self._wall: list[dt.datetime] = []
        self._planned: list[dt.datetime] = []

    def enter(self, planned: dt.datetime) -> None:
        self._wall.append(timezone.now())
        self._planned.append(planned)

    def planned(self, stamp: dt.datetime) -> dt.datetime:
        index = bisect.bisect_right(self._wall, stamp) - 1
        return self._planned[max(index, 0)]


class _Timeline:
    """Successive moments of one story, each some hours after the last and never in the future."""

    def __init__(self, start: dt.datetime, now: dt.datetime, rng: random.Random):
        self.t, self.now, self.rng = start, now, rng

    def after(self, low_hours: float, high_hours: float, *, optional: bool = False) -> dt.datetime | None:
        """The next moment; an optional step that would fall after today does not happen (None)."""
        t = self.t + dt.timedelta(hours=self.rng.uniform(low_hours, high_hours))
        if t >= self.now:
            if optional:
                return None
            # A step the story needs is squeezed in before today instead.
            t = self.t + (self.now - self.t) * self.rng.uniform(0.2, 0.6)
        self.t = t
        return t

    def not_before(self, moment: dt.datetime) -> None:
        if self.t < moment:
            self.t = moment + (self.now - moment) * self.rng.uniform(0.0, 0.7)


#: Final order statuses, weighted like a going business: most orders delivered long ago.
FINAL_WEIGHTS = {S.DELIVERED: 62, S.CANCELLED: 7, S.SHIPPED: 6, S.PROCESSING: 6, S.CONFIRMED: 6, S.PENDING: 8,
                 S.ON_HOLD: 5}
#: How old (days) an order with that final status can be.
AGE_RANGE = {S.PENDING: (0.05, 20), S.CONFIRMED: (0.2, 12), S.PROCESSING: (1, 15), S.SHIPPED: (2, 12),
             S.DELIVERED: (10, HISTORY_DAYS), S.CANCELLED: (1, HISTORY_DAYS), S.ON_HOLD: (1, 45)}
#: How a delivered order was billed; weights, and the least age for the story to play out.
DELIVERED_BILLING = {
    "paid": (52, 60), "instalments": (8, 100), "partly_paid": (4, 60), "unpaid": (3, 45),
    "credited_full": (3, 20), "credited_part_then_paid": (4, 70), "paid_then_credited_part": (4, 70),
    "voided_and_rebilled": (4, 70), "not_invoiced": (2, 10),
}
OPEN_BILLING = {
    S.CONFIRMED: {"not_invoiced": 60, "draft": 40},
    S.PROCESSING: {"not_invoiced": 40, "draft": 30, "issued": 30},
    S.SHIPPED: {"issued": 70, "paid": 20, "draft": 10},
    S.CANCELLED: {"not_invoiced": 80, "voided_then_cancelled": 20},
}
MANUAL_BILLING = {"draft": 10, "paid": 45, "unpaid": 25, "voided": 10, "partly_paid": 10}


def _cycle_then_weighted(rng: random.Random, weights: dict[str, int], index: int) -> str:
    """The index-th pick: every key once in turn first (so small runs show all), then by weight."""
    keys = list(weights)
    if index < len(keys):
        return keys[index]
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


class _Generator:
    def __init__(self, *, users: dict[str, User], customers: int, orders: int, seed: int,
                 progress: Callable[[str], None]):
        self.users = users
        self.n_customers, self.n_orders = customers, orders
        self.rng = random.Random(seed)
        self.progress = progress
        self.clock = _Clock()
        # Planned times stay a minute short of the start, so a wall-clock stamp is never one.
        self.now = self.clock.started - dt.timedelta(minutes=1)
        local_now = timezone.localtime(self.now)
        self.year_start = local_now.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
        self.steps: list[_Step] = []
        self.done = Counter()

    # -- the run --------------------------------------------------------------------------------
    def run(self) -> None:
        customers = self._plan_customers()
        stories = self._plan_orders()
        self._assign_customers(stories, customers)
        for customer in customers:
            self._add_customer_steps(customer)
        for story in stories:
            self._add_order_steps(story)
        self._add_manual_invoice_steps(customers)
        self.steps.sort()
        total = len(self.steps)
        self.progress(f"Planned {len(customers)} customers, {len(stories)} orders: {total} steps through the services")
        report_every = max(total // 10, 1)
        for position, step in enumerate(self.steps, start=1):
            self.clock.enter(step.at)
            step.action()
            if position % report_every == 0 or position == total:
                self.progress(f"  {position * 100 // total:3d}%  " + ", ".join(
                    f"{name} {self.done[name]}" for name in ("customers", "orders", "invoices", "payments",
                                                             "credit notes")))
        self._restamp()

    def _step(self, at: dt.datetime, action: Callable[[], None], kind: str = "") -> None:
        self.steps.append(_Step(at, len(self.steps), action, kind))

    # -- customers ------------------------------------------------------------------------------
    def _plan_customers(self) -> list[_CustomerPlan]:
        rng, plans, names = self.rng, [], set()
        for n in range(1, self.n_customers + 1):
            while True:
                name = f"{rng.choice(NAME_HEADS)} {rng.choice(NAME_TRADES)} {rng.choice(NAME_SUFFIXES)}"
                if name not in names or len(names) > 0.9 * len(NAME_HEADS) * len(NAME_TRADES) * len(NAME_SUFFIXES):
                    break
            names.add(name)
            slug = "".join(ch for ch in name.split(" ")[0].lower() if ch.isalpha()) + f"{n:03d}"
            email = None if rng.random() < 0.04 else f"{rng.choice(['billing', 'ap', 'accounts'])}@{slug}.example.com"
            plans.append(_CustomerPlan(
                code=f"{DEMO_CODE_PREFIX}{n:06d}", name=name, email=email,
                place=rng.choices(PLACES, weights=PLACE_WEIGHTS)[0],
                street=f"{rng.randint(1, 9800)} {rng.choice(STREETS)}",
                credit_limit=rng.choice([Decimal("5000.00"), Decimal("10000.00"), Decimal("25000.00"),
                                         Decimal("50000.00"), Decimal("100000.00"), None]),
                weight=rng.paretovariate(1.4),
            ))
        # Branches of one business share the head office's accounts-payable mailbox.
        for _ in range(max(1, len(plans) // 25) if len(plans) >= 2 else 0):
            head, *branches = rng.sample(plans, min(len(plans), rng.choice([2, 2, 3])))
            head.email = head.email or f"ap@{head.code.lower()}.example.com"
            for branch in branches:
                branch.email = head.email
        # Some leave active: credit hold recently, inactive some months ago. The first two
        # candidates cover both even in a small run; the last customer always stays active.
        for index, plan in enumerate(plans[:-1]):
            draw = rng.random()
            if index == 0 or (index > 1 and draw < 0.06):
                plan.final_status = CustomerStatus.ON_HOLD
                plan.changed_at = self.now - dt.timedelta(days=rng.uniform(2, 40))
            elif index == 1 or (index > 1 and draw < 0.11):
                plan.final_status = CustomerStatus.INACTIVE
                plan.changed_at = self.now - dt.timedelta(days=rng.uniform(60, 200))
        return plans

    def _add_customer_steps(self, plan: _CustomerPlan) -> None:
        joined = self.now - dt.timedelta(days=HISTORY_DAYS + self.rng.uniform(5, 400))
        self._step(joined, lambda: self._create_customer(plan, joined), "customer")
        if plan.changed_at is not None:
            self._step(plan.changed_at, lambda: self._change_customer_status(plan), "customer status")

    def _create_customer(self, plan: _CustomerPlan, joined: dt.datetime) -> None:
        city, state, postal, country, _currency, _tax = plan.place
        customer = Customer(code=plan.code, name=plan.name, email=plan.email, phone=self._phone(),
                            address_line1=plan.street, city=city, state=state, postal_code=postal,
                            country=country, credit_limit=plan.credit_limit, created_at=joined)
        plan.record = order_services.customer_save(customer=customer, by=self.users["sales"])
        self.done["customers"] += 1

    def _change_customer_status(self, plan: _CustomerPlan) -> None:
        plan.record.status = plan.final_status
        by = self.users["billing"] if plan.final_status == CustomerStatus.ON_HOLD else self.users["sales"]
        order_services.customer_save(customer=plan.record, by=by)

    def _phone(self) -> str:
        return f"{self.rng.randint(201, 989)}-555-{self.rng.randint(100, 199):04d}"

    # -- orders: planning -----------------------------------------------------------------------
    def _plan_orders(self) -> list[_OrderStory]:
        rng, stories = self.rng, []
        seen = Counter()
        for index in range(self.n_orders):
            final = _cycle_then_weighted(rng, FINAL_WEIGHTS, index)
            if final == S.DELIVERED:
                billing = _cycle_then_weighted(rng, {k: w for k, (w, _) in DELIVERED_BILLING.items()}, seen[final])
                low = max(AGE_RANGE[final][0], DELIVERED_BILLING[billing][1])
            else:
                billing = _cycle_then_weighted(rng, OPEN_BILLING.get(final, {"not_invoiced": 1}), seen[final])
                low = AGE_RANGE[final][0]
            seen[final] += 1
            high = max(AGE_RANGE[final][1], low + 1)
            # Skewed towards recent: the business grew over the two years.
            age_days = low + (high - low) * rng.random() ** 1.3
            stories.append(_OrderStory(final=final, billing=billing, ordered_at=self.now - dt.timedelta(days=age_days),
                                       lines=self._lines(), seed=rng.getrandbits(64)))
        return stories

    def _lines(self) -> list[order_services.OrderLineInput]:
        rng, lines = self.rng, []
        for sku, description, price, by_weight in rng.sample(CATALOG, rng.choice([1, 1, 2, 2, 2, 3, 3, 4, 5, 7])):
            if by_weight:
                quantity = Decimal(rng.randint(5, 2500)) / Decimal(10)  # weighed goods: kg to 0.1
            else:
                quantity = Decimal(rng.choice([1, 1, 2, 3, 4, 5, 6, 10, 12, 20, 24, 50, 100]))
            discount = rng.choice([ZERO] * 8 + [Decimal("5"), Decimal("10"), Decimal("12.5")])
            lines.append(order_services.OrderLineInput(sku=sku, description=description, quantity=quantity,
                                                       unit_price=Decimal(price), discount_percent=discount))
        return lines

    def _assign_customers(self, stories: list[_OrderStory], customers: list[_CustomerPlan]) -> None:
        """Give each story a customer whose status allows every step of it, big accounts more often."""
        for story in stories:
            story.last_step_at, story.last_confirm_at = self._story_bounds(story)
        always = [c for c in customers if c.final_status == CustomerStatus.ACTIVE]
        weights = [c.weight for c in customers]
        for story in stories:
            for _ in range(12):
                candidate = self.rng.choices(customers, weights=weights)[0]
                if self._customer_allows(candidate, story):
                    break
            else:
                candidate = self.rng.choices(always, weights=[c.weight for c in always])[0]
            story.customer = candidate
            story.header = self._header(story, candidate)

    @staticmethod
    def _customer_allows(customer: _CustomerPlan, story: _OrderStory) -> bool:
        if customer.changed_at is None:
            return True
        if customer.final_status == CustomerStatus.INACTIVE:
            # An inactive customer had nothing going on after it left.
            return story.last_step_at < customer.changed_at
        # On credit hold: nothing can be confirmed after the hold, but orders still come in.
        return story.last_confirm_at is None or story.last_confirm_at < customer.changed_at

    def _header(self, story: _OrderStory, customer: _CustomerPlan) -> dict:
        rng = self.rng
        city, state, postal, country, currency, tax_rate = customer.place
        subtotal = sum((line_amount(line.quantity, line.unit_price, line.discount_percent) for line in story.lines),
                       ZERO)
        discount = round_amount(subtotal * Decimal("0.05")) if rng.random() < 0.1 else ZERO
        freight = ZERO if subtotal >= 750 else rng.choice([Decimal("12.50"), Decimal("18.00"), Decimal("24.95"),
                                                           Decimal("39.00"), Decimal("89.00")])
        header = {
            "ordered_at": story.ordered_at, "currency": currency, "discount": discount, "freight": freight,
            "tax": round_amount((subtotal - discount) * tax_rate), "ship_name": customer.name,
            "ship_address_line1": customer.street, "ship_city": city, "ship_state": state,
            "ship_postal_code": postal, "ship_country": country,
        }
        if rng.random() < 0.15:
            header["ship_name"] = f"{customer.name} — job site"
            header["ship_address_line1"] = f"{rng.randint(1, 9800)} {rng.choice(STREETS)}"
        if rng.random() < 0.4:
            header["po_number"] = f"PO-{rng.randint(10000, 99999)}"
        if rng.random() < 0.3:
            header["requested_ship_at"] = story.ordered_at + dt.timedelta(days=rng.randint(3, 21))
        if rng.random() < 0.05:
            header["notes"] = rng.choice(["Deliver to the loading dock at the back.", "Call before delivery.",
                                          "Gate code 4411.", "Forklift on site."])
        return header

    # -- orders: stories become steps -----------------------------------------------------------
    def _story_bounds(self, story: _OrderStory) -> tuple[dt.datetime, dt.datetime | None]:
        """Plan the story once without adding steps, to learn when it ends (for the customer check)."""
        recorded: list[tuple[dt.datetime, str]] = []
        self._plan_story(story, lambda at, action, kind: recorded.append((at, kind)))
        confirms = [at for at, kind in recorded if kind == "confirm"]
        return max(at for at, _ in recorded), (max(confirms) if confirms else None)

    def _add_order_steps(self, story: _OrderStory) -> None:
        self._plan_story(story, self._step)

    def _plan_story(self, story: _OrderStory, add: Callable) -> None:
        """Turn the story into steps, passed to add(at, action, kind) in time order."""
        rng = random.Random(story.seed)
        t = _Timeline(story.ordered_at, self.now, rng)
        sales, billing = self.users["sales"], self.users["billing"]
        final = story.final

        add(story.ordered_at, lambda: self._create_order(story), "create")
        reach = {S.PENDING: 0, S.CONFIRMED: 1, S.PROCESSING: 2, S.SHIPPED: 3, S.DELIVERED: 4}.get(final)
        if reach is None:  # on hold or cancelled: from how far along?
            reach = rng.choice([0, 0, 1, 2]) if final == S.ON_HOLD else rng.choice([0, 0, 0, 1, 1, 2])
            if story.billing == "voided_then_cancelled":
                reach = max(reach, 1)
        detour = rng.random() < 0.08

        def order_step(at, service, kind, **kwargs):
            add(at, lambda: service(order=story.order, by=sales, **kwargs), kind)

        if detour and reach == 0 and final == S.PENDING:
            order_step(t.after(1, 30), order_services.order_hold, "hold", reason=rng.choice(HOLD_REASONS))
            order_step(t.after(4, 72), order_services.order_release, "release", reason=rng.choice(RELEASE_REASONS))
        if reach >= 1:
            order_step(t.after(0.5, 20), order_services.order_confirm, "confirm")
            if detour:
                order_step(t.after(1, 24), order_services.order_hold, "hold", reason=rng.choice(HOLD_REASONS))
                order_step(t.after(4, 96), order_services.order_release, "release",
                           reason=rng.choice(RELEASE_REASONS))
        if story.billing == "voided_then_cancelled":
            self._bill(story, t, rng, add, billing, issue=True)
            add(t.after(24, 120), lambda: self._void(story, rng.choice(VOID_REASONS)), "void")
        if reach >= 2:
            order_step(t.after(4, 48), order_services.order_start_processing, "process")
        ship_at = None
        if reach >= 3:
            ship_at = t.after(12, 96)
            order_step(ship_at, order_services.order_ship, "ship")
        if reach >= 4:
            order_step(t.after(24, 144), order_services.order_deliver, "deliver")
        if final == S.ON_HOLD:
            order_step(t.after(2, 72), order_services.order_hold, "hold", reason=rng.choice(HOLD_REASONS))
        elif final == S.CANCELLED:
            if rng.random() < 0.3 and story.billing != "voided_then_cancelled":
                order_step(t.after(2, 72), order_services.order_hold, "hold", reason=rng.choice(HOLD_REASONS))
            order_step(t.after(2, 120), order_services.order_cancel, "cancel", reason=rng.choice(CANCEL_REASONS))
        # Billing runs beside delivery: it starts when the order ships (or is confirmed, for open ones).
        if story.billing in ("not_invoiced", "voided_then_cancelled") or final in (S.ON_HOLD, S.PENDING):
            return
        start = ship_at or t.t
        self._plan_billing(story, _Timeline(start, self.now, rng), rng, add, billing)

    def _plan_billing(self, story: _OrderStory, t: _Timeline, rng: random.Random, add, billing: User) -> None:
        kind = story.billing
        if kind == "draft":
            self._bill(story, t, rng, add, billing, issue=False)
            return
        self._bill(story, t, rng, add, billing, issue=True)
        if kind == "voided_and_rebilled":
            add(t.after(24, 240), lambda: self._void(story, rng.choice(VOID_REASONS)), "void")
            self._bill(story, t, rng, add, billing, issue=True)
            kind = "paid"
        if kind == "paid":
            self._pay(story, t.after(72, 1000, optional=True), rng, add, None)
        elif kind == "instalments":
            for share in (Decimal("0.4"), Decimal("0.3"), None):
                if not self._pay(story, t.after(240, 700, optional=True), rng, add, share):
                    break
        elif kind == "partly_paid":
            self._pay(story, t.after(240, 700), rng, add, Decimal(rng.choice(["0.25", "0.4", "0.5", "0.6"])))
        elif kind == "credited_full":
            t.not_before(self.year_start)
            self._credit(story, t.after(1, 72), rng, add, None)
        elif kind == "credited_part_then_paid":
            t.not_before(self.year_start)
            self._credit(story, t.after(24, 240), rng, add, Decimal(rng.choice(["0.1", "0.15", "0.25"])))
            self._pay(story, t.after(24, 480, optional=True), rng, add, None)
        elif kind == "paid_then_credited_part":
            self._pay(story, t.after(72, 700), rng, add, None)
            t.not_before(self.year_start)
            self._credit(story, t.after(24, 480), rng, add, Decimal(rng.choice(["0.05", "0.1", "0.2"])))
        # "issued" and "unpaid": issued and left alone (overdue once the terms run out).

    def _bill(self, story: _OrderStory, t: _Timeline, rng: random.Random, add, by: User, *, issue: bool) -> None:
        def draft():
            story.invoice = invoice_services.invoice_create_for_order(order=story.order, by=by)
            self.done["invoices"] += 1

        add(t.after(1, 24), draft, "draft")
        if issue:
            issued_at = t.after(0.1, 4)
            add(issued_at, lambda: invoice_services.invoice_issue(invoice=story.invoice, by=by, at=issued_at), "issue")

    def _void(self, story: _OrderStory, reason: str) -> None:
        invoice_services.invoice_void(invoice=story.invoice, reason=reason, by=self.users["billing"])

    def _pay(self, story: _OrderStory, at: dt.datetime | None, rng: random.Random, add,
             share: Decimal | None) -> bool:
        """Pay a share of the total (None: whatever is left) at that moment; False when it never happens."""
        if at is None:
            return False
        reference = f"{rng.choice(['ACH', 'Wire', 'Check #', 'Card'])} {rng.randint(100000, 999999)}"

        def pay():
            invoice = Invoice.objects.get(pk=story.invoice.pk)
            amount = invoice.balance_due if share is None else min(round_amount(invoice.total * share),
                                                                   invoice.balance_due)
            if amount > 0:
                invoice_services.invoice_record_payment(invoice=invoice, amount=amount, received_at=at,
                                                        reference=reference, by=self.users["billing"])
                self.done["payments"] += 1

        add(at, pay, "payment")
        return True

    def _credit(self, story: _OrderStory, at: dt.datetime, rng: random.Random, add, share: Decimal | None) -> None:
        reason = rng.choice(CREDIT_REASONS)

        def credit():
            invoice = Invoice.objects.get(pk=story.invoice.pk)
            amount = None if share is None else max(round_amount(invoice.total * share), Decimal("0.01"))
            invoice_services.credit_note_create(invoice=invoice, reason=reason, amount=amount,
                                                by=self.users["billing"])
            self.done["credit notes"] += 1

        add(at, credit, "credit")

    def _create_order(self, story: _OrderStory) -> None:
        story.order = order_services.order_create(customer=story.customer.record, lines=story.lines,
                                                  by=self.users["sales"], **story.header)
        self.done["orders"] += 1

    # -- manual invoices ------------------------------------------------------------------------
    def _add_manual_invoice_steps(self, customers: list[_CustomerPlan]) -> None:
        """Invoices that bill no order: services, fees, rentals."""
        rng, billing = self.rng, self.users["billing"]
        count = max(len(MANUAL_BILLING), self.n_orders // 40) if self.n_orders else 0
        for index in range(count):
            kind = _cycle_then_weighted(rng, MANUAL_BILLING, index)
            least_age = {"paid": 60, "unpaid": 45, "partly_paid": 60}.get(kind, 1)
            at = self.now - dt.timedelta(days=least_age + (HISTORY_DAYS - least_age) * rng.random() ** 1.3)
            eligible = [c for c in customers if c.changed_at is None or c.changed_at > at + dt.timedelta(days=60)]
            customer = rng.choices(eligible, weights=[c.weight for c in eligible])[0]
            lines = [invoice_services.InvoiceLineInput(description=description, quantity=Decimal(rng.randint(1, 8)),
                                                       unit_price=Decimal(price))
                     for description, price in rng.sample(MANUAL_SERVICES, rng.choice([1, 1, 2, 3]))]
            tax_rate = customer.place[5]
            tax = round_amount(sum((line_amount(ln.quantity, ln.unit_price) for ln in lines), ZERO) * tax_rate)
            story = _OrderStory(final="", billing=kind, ordered_at=at, lines=[], customer=customer)
            t = _Timeline(at, self.now, rng)

            def draft(story=story, lines=lines, tax=tax, currency=customer.place[4]):
                story.invoice = invoice_services.invoice_create_manual(
                    customer=story.customer.record, lines=lines, tax=tax, currency=currency, by=billing,
                    notes="Billed separately from the orders.")
                self.done["invoices"] += 1

            self._step(at, draft, "manual draft")
            if kind == "draft":
                continue
            if kind == "voided":
                self._step(t.after(2, 72), lambda story=story: self._void(story, "Raised in error; no charge"), "void")
                continue
            issued_at = t.after(0.5, 24)
            self._step(issued_at, lambda story=story, at=issued_at: invoice_services.invoice_issue(
                invoice=story.invoice, by=billing, at=at), "issue")
            if kind == "paid":
                self._pay(story, t.after(120, 900), rng, self._step, None)
            elif kind == "partly_paid":
                self._pay(story, t.after(120, 600), rng, self._step, Decimal("0.5"))

    # -- history dates --------------------------------------------------------------------------
    def _restamp(self) -> None:
        """Give every wall-clock stamp written during the run the planned time of its step."""
        stamped = [
            (OrderStatusEvent, "at"), (InvoiceStatusEvent, "at"), (Order, "created_at"), (Order, "updated_at"),
            (Invoice, "created_at"), (Invoice, "updated_at"), (Invoice, "invoiced_at"), (Invoice, "paid_at"),
            (Payment, "recorded_at"), (Customer, "updated_at"),
        ]
        for model, name in stamped:
            rows = model.objects.filter(**{f"{name}__gte": self.clock.started}).values_list("pk", name)
            column = model._meta.get_field(name)
            # Plain UPDATE … WHERE id = ? per row: far quicker than bulk_update's CASE on thousands of rows.
            sql = (f"UPDATE {connection.ops.quote_name(model._meta.db_table)} "
                   f"SET {connection.ops.quote_name(column.column)} = %s WHERE id = %s")
            params = [(column.get_db_prep_value(self.clock.planned(stamp), connection), pk) for pk, stamp in rows]
            with connection.cursor() as cursor:
                cursor.executemany(sql, params)
        # A payment is recorded the day it is received, in this story.
        Payment.objects.filter(recorded_at__gt=F("received_at")).update(recorded_at=F("received_at"))
