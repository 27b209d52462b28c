"""Every row lock the services take, in one place, with the race each one prevents.

Lock order, always: orders (by primary key) → invoices (by primary key) → number sequences.
Taking locks in one global order is what keeps two concurrent actions from deadlocking.
On SQLite (the embedded demo) SELECT … FOR UPDATE is a no-op; SQLite serialises writers anyway.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import IntegrityError, transaction


def lock_order(order_id: int):
    """Lock one order for a status change or an edit.

    Race prevented: two staff (or staff and the API) moving the same order at once, e.g. one
    cancels while the other invoices it, both reading 'confirmed' and both succeeding.
    """
    from orders.models import Order

    return Order.objects.select_for_update().get(pk=order_id)


def lock_orders(order_ids: Iterable[int]) -> list:
    """Lock several orders, in primary-key order so concurrent bulk actions cannot deadlock."""
    from orders.models import Order

    return list(Order.objects.select_for_update().filter(pk__in=list(order_ids)).order_by("pk"))


def lock_invoice(invoice_id: int):
    """Lock one invoice for issuing, a payment, a void or a credit note.

    Race prevented: two payments recorded at once both reading the same paid amount and the
    invoice ending up paid twice over; a void racing a payment.
    """
    from invoices.models import Invoice

    return Invoice.objects.select_for_update().get(pk=invoice_id)


def take_next_number(series: str, year: int) -> int:
    """Increment the (series, year) counter under a row lock and return the new number.

    Race prevented: two invoices issued at the same moment reading the same last number (a
    duplicate) — the second waits for the first transaction. Because the counter is a row in the
    same transaction as the invoice, a rollback returns the number too: no gap.
    Must run inside the caller's transaction.
    """
    from orders.models import NumberSequence

    assert transaction.get_connection().in_atomic_block, "take_next_number needs a transaction"
    sequence = NumberSequence.objects.select_for_update().filter(series=series, year=year).first()
    if sequence is None:
        try:
            # Savepoint: if another transaction created the row first, only this insert is undone.
            with transaction.atomic():
                NumberSequence.objects.create(series=series, year=year)
        except IntegrityError:
            pass
        sequence = NumberSequence.objects.select_for_update().get(series=series, year=year)
    sequence.last_number += 1
    sequence.save(update_fields=["last_number"])
    return sequence.last_number
