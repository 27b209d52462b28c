"""Factories for the domain. Orders and invoices are made through the services, as staff make them."""

from __future__ import annotations

from decimal import Decimal

import factory

from invoices import services as invoice_services
from orders import services as order_services
from orders.models import Customer


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    code = factory.Sequence(lambda n: f"C{n:07d}")
    name = factory.Faker("company")
    email = factory.LazyAttribute(lambda c: f"billing@{c.code.lower()}.example.com")
    phone = "555-0100"
    address_line1 = factory.Faker("street_address")
    city = factory.Faker("city")
    state = "NY"
    postal_code = "10001"
    country = "US"
    credit_limit = Decimal("50000.00")


def line(sku: str = "SKU-1", quantity: str = "2", unit_price: str = "10.0000", discount_percent: str = "0",
         description: str = "Widget") -> order_services.OrderLineInput:
    return order_services.OrderLineInput(sku=sku, quantity=Decimal(quantity), unit_price=Decimal(unit_price),
                                         discount_percent=Decimal(discount_percent), description=description)


def make_order(*, customer: Customer | None = None, lines=None, by=None, **header):
    """A pending order with two lines unless told otherwise: 2 × 10.00 + 1 × 5.50 = 25.50."""
    customer = customer or CustomerFactory()
    if lines is None:
        lines = [line("SKU-1", "2", "10.00"), line("SKU-2", "1", "5.50", description="Gadget")]
    return order_services.order_create(customer=customer, lines=lines, by=by, **header)


def make_confirmed_order(**kwargs):
    order = make_order(**kwargs)
    return order_services.order_confirm(order=order, by=kwargs.get("by"))


def make_issued_invoice(*, by=None, **kwargs):
    order = make_confirmed_order(by=by, **kwargs)
    invoice = invoice_services.invoice_create_for_order(order=order, by=by)
    return invoice_services.invoice_issue(invoice=invoice, by=by)
