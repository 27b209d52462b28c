"""Numbers and money under concurrency, against the real PostgreSQL: several connections at once.

Each worker is a thread, and Django gives each thread its own database connection, so these are
separate transactions racing for the same rows, as two desks (or the API and a desk) would.
A barrier releases the workers together; every worker closes its connection when it is done.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.db import connection, transaction

from invoices import services as svc
from invoices.models import Invoice, InvoiceStatus, Payment
from oms.errors import DomainError, IllegalTransition
from orders import services as order_services
from orders.models import NumberSequence, Order, OrderStatus
from tests.factories import CustomerFactory, make_confirmed_order, make_order

D = Decimal
WORKERS = 8
#: Issue date of every invoice here, so the series under test is one known year.
AT = dt.datetime(2030, 6, 1, 12, tzinfo=dt.UTC)
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]


class Together:
    """Run work(worker) on WORKERS threads released at the same instant; keep what each one raised."""

    def __init__(self, workers: int = WORKERS):
        self.workers = workers
        self.errors: list[BaseException] = []
        self.in_flight = self.most_in_flight = 0
        self._count = threading.Lock()

    def run(self, work: Callable[[int], None]) -> None:
        barrier = threading.Barrier(self.workers)

        def worker(n: int) -> None:
            try:
                barrier.wait(timeout=30)
                work(n)
            except BaseException as exc:  # noqa: BLE001 - reported by the test, not swallowed
                self.errors.append(exc)
            finally:
                connection.close()  # this thread's own connection

        threads = [threading.Thread(target=worker, args=(n,), name=f"desk-{n}") for n in range(self.workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(t.is_alive() for t in threads), "a worker hung (a lock never released?)"

    def action(self, call: Callable[[], object]) -> object:
        """Run one service call, counting how many calls are under way at once across the workers."""
        with self._count:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return call()
        finally:
            with self._count:
                self.in_flight -= 1


def drafts(count: int) -> list[Invoice]:
    customer = CustomerFactory()
    line = svc.InvoiceLineInput(description="Support hours", quantity=D("1.5"), unit_price=D("80.00"))
    return [svc.invoice_create_manual(customer=customer, lines=[line], tax=D("12.00")) for _ in range(count)]


def sequence_numbers(invoices: list[Invoice]) -> list[int]:
    return sorted(Invoice.objects.filter(pk__in=[i.pk for i in invoices], sequence_number__isnull=False)
                  .values_list("sequence_number", flat=True))


def test_issuing_from_eight_connections_at_once_numbers_without_gap_or_duplicate():
    invoices = drafts(60)
    together = Together()

    def issue_my_share(worker: int) -> None:
        for invoice in invoices[worker::WORKERS]:
            together.action(lambda invoice=invoice: svc.invoice_issue(invoice=invoice, at=AT))

    together.run(issue_my_share)

    assert together.errors == []
    assert together.most_in_flight > 1, "the workers never overlapped; the test proved nothing"
    assert sequence_numbers(invoices) == list(range(1, 61))
    numbers = list(Invoice.objects.filter(pk__in=[i.pk for i in invoices]).values_list("number", flat=True))
    assert sorted(numbers) == [f"INV-2030-{n:06d}" for n in range(1, 61)]
    assert NumberSequence.objects.get(series="INV", year=2030).last_number == 60
    assert all(i.status_events.filter(to_status=InvoiceStatus.ISSUED).count() == 1
               for i in Invoice.objects.filter(pk__in=[i.pk for i in invoices]))


def test_the_same_drafts_issued_from_every_desk_at_once_get_one_number_each():
    invoices = drafts(20)
    together = Together()
    issued, refused = [], []

    def issue_everything_in_my_own_order(worker: int) -> None:
        mine = list(invoices)
        random.Random(worker).shuffle(mine)
        for invoice in mine:
            try:
                together.action(lambda invoice=invoice: svc.invoice_issue(invoice=invoice, at=AT))
                issued.append(invoice.pk)
            except IllegalTransition:
                refused.append(invoice.pk)

    together.run(issue_everything_in_my_own_order)

    assert together.errors == []
    assert sorted(issued) == sorted(i.pk for i in invoices)  # each one exactly once
    assert len(refused) == WORKERS * len(invoices) - len(invoices)
    assert sequence_numbers(invoices) == list(range(1, 21))


def test_numbers_stay_gapless_when_some_issuing_transactions_roll_back():
    invoices = drafts(60)
    abandoned = {i.pk for i in invoices[::4]}  # 15 of them
    together = Together()

    class Abandoned(Exception):
        """Something after the number was taken failed, so the whole transaction rolled back."""

    def issue_my_share_abandoning_some(worker: int) -> None:
        for invoice in invoices[worker::WORKERS]:
            try:
                with transaction.atomic():
                    together.action(lambda invoice=invoice: svc.invoice_issue(invoice=invoice, at=AT))
                    if invoice.pk in abandoned:
                        raise Abandoned
            except Abandoned:
                pass

    together.run(issue_my_share_abandoning_some)

    assert together.errors == []
    assert sequence_numbers(invoices) == list(range(1, 46))
    left = Invoice.objects.filter(pk__in=abandoned)
    assert set(left.values_list("status", "number", "sequence_number")) == {(InvoiceStatus.DRAFT, None, None)}
    assert NumberSequence.objects.get(series="INV", year=2030).last_number == 45

    for invoice in left:  # issued again later, they continue the series
        svc.invoice_issue(invoice=invoice, at=AT)
    assert sequence_numbers(invoices) == list(range(1, 61))


@pytest.mark.parametrize(("each_pays", "accepted"), [("33.00", 4), ("36.00", 3)], ids=["fits 4 times", "leaves 24.00"])
def test_payments_recorded_at_once_never_overpay_an_invoice(each_pays, accepted):
    invoice = svc.invoice_issue(invoice=drafts(1)[0], at=AT)  # 120.00 + 12.00 tax = 132.00
    assert invoice.total == D("132.00")
    amount = D(each_pays)
    together = Together()

    def pay(worker: int) -> None:
        try:
            together.action(lambda: svc.invoice_record_payment(invoice=invoice, amount=amount,
                                                               reference=f"desk {worker}"))
        except DomainError:
            pass  # refused: would overpay, or already paid

    together.run(pay)

    assert together.errors == []
    invoice.refresh_from_db()
    paid = sum(Payment.objects.filter(invoice=invoice).values_list("amount", flat=True), D("0"))
    assert Payment.objects.filter(invoice=invoice).count() == accepted
    assert invoice.paid_amount == paid == amount * accepted <= invoice.total
    fully_paid = paid == invoice.total
    assert invoice.status == (InvoiceStatus.PAID if fully_paid else InvoiceStatus.ISSUED)
    assert invoice.status_events.filter(to_status=InvoiceStatus.PAID).count() == (1 if fully_paid else 0)


def test_credit_notes_raised_at_once_never_credit_more_than_the_invoice():
    invoice = svc.invoice_issue(invoice=drafts(1)[0], at=AT)  # 132.00
    together = Together()

    def credit(worker: int) -> None:
        try:
            together.action(lambda: svc.credit_note_create(invoice=invoice, reason=f"Goodwill from desk {worker}",
                                                           amount=D("40.00")))
        except DomainError:
            pass  # refused: more than what is left to credit

    together.run(credit)

    assert together.errors == []
    invoice.refresh_from_db()
    notes = list(invoice.credit_notes.values_list("total", "sequence_number"))
    assert sorted(total for total, _ in notes) == [D("40.00")] * 3
    assert invoice.credited_amount == D("120.00") <= invoice.total
    assert sorted(n for _, n in notes) == [1, 2, 3]


def test_orders_created_at_once_get_unique_consecutive_numbers():
    customer = CustomerFactory()
    together = Together()

    def create_five(worker: int) -> None:
        for _ in range(5):
            together.action(lambda: make_order(customer=customer))

    together.run(create_five)

    assert together.errors == []
    numbers = sorted(Order.objects.values_list("number", flat=True))
    year = int(numbers[0][2:6])
    assert numbers == [f"SO{year}-{n:06d}" for n in range(1, 41)]


def test_an_order_invoiced_from_every_desk_at_once_gets_one_invoice():
    order = make_confirmed_order()
    together = Together()

    def invoice_it(worker: int) -> None:
        try:
            together.action(lambda: svc.invoice_create_for_order(order=order))
        except DomainError as exc:
            assert "is already invoiced on" in exc.message

    together.run(invoice_it)

    assert together.errors == []
    assert Invoice.objects.filter(order=order).count() == 1


def test_cancelling_and_invoicing_the_same_orders_at_once_never_leaves_a_cancelled_order_billed():
    orders = [make_confirmed_order() for _ in range(12)]
    together = Together(workers=2)

    def cancel_or_invoice_each(worker: int) -> None:
        for order in orders:
            try:
                if worker == 0:
                    together.action(lambda order=order: order_services.order_cancel(order=order, reason="Withdrawn"))
                else:
                    together.action(lambda order=order: svc.invoice_create_for_order(order=order))
            except DomainError:
                pass  # the other desk got there first

    together.run(cancel_or_invoice_each)

    assert together.errors == []
    for order in Order.objects.filter(pk__in=[o.pk for o in orders]):
        invoiced = Invoice.objects.live_for_order(order).exists()
        assert (order.status == OrderStatus.CANCELLED) != invoiced, order.number
