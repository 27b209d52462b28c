from decimal import Decimal

from tests.factories import make_issued_invoice, make_order


def test_order_totals_add_up_when_created(db):
    order = make_order(tax=Decimal("2.04"), freight=Decimal("4.00"), discount=Decimal("1.50"))
    assert order.subtotal == Decimal("25.50")
    assert order.total == Decimal("30.04")
    assert order.number.startswith("SO")


def test_issued_invoice_gets_the_first_number_of_the_year(db):
    invoice = make_issued_invoice()
    assert invoice.number.endswith("-000001")
    assert invoice.total == Decimal("25.50")
