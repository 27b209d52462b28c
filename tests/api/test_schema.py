"""The OpenAPI schema: generated without a single warning, and complete for an integrator."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer

RESOURCES = {
    "/api/v1/customers/", "/api/v1/customers/{id}/", "/api/v1/customers/{customer_pk}/orders/",
    "/api/v1/orders/", "/api/v1/orders/{id}/", "/api/v1/orders/{order_pk}/invoices/",
    "/api/v1/orders/{order_pk}/events/", "/api/v1/order-events/", "/api/v1/order-events/{id}/",
    "/api/v1/invoices/", "/api/v1/invoices/{id}/", "/api/v1/invoice-events/", "/api/v1/invoice-events/{id}/",
    *(f"/api/v1/orders/{{id}}/{step}/" for step in
      ("confirm", "start-processing", "ship", "deliver", "hold", "release", "cancel")),
    *(f"/api/v1/invoices/{{id}}/{step}/" for step in ("issue", "pay", "void", "credit")),
    "/api/v1/auth/token/", "/api/v1/auth/token/refresh/",
    *(f"/api/v1/migration/{report}/" for report in
      ("runs", "issues", "reconciliations", "discrepancies", "control-totals", "shadow-mismatches")),
    *(f"/api/v1/migration/{report}/{{id}}/" for report in
      ("runs", "issues", "reconciliations", "discrepancies", "control-totals", "shadow-mismatches")),
    "/api/v1/migration/entity-states/", "/api/v1/migration/shadow-reads/",
}


@pytest.fixture(scope="module")
def schema() -> dict:
    document = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document))


def test_schema_generates_and_validates_without_any_warning(tmp_path):
    # --fail-on-warn turns every drf-spectacular warning (and error) into a failure.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert (tmp_path / "schema.yaml").read_text().startswith("openapi: 3.0.3")


def test_every_resource_and_action_is_documented(schema):
    assert set(schema["paths"]) == RESOURCES


def test_every_operation_documents_its_errors_in_the_error_format(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert {"401", "429"} <= set(responses), (method, path)
            success = [code for code in responses if code.startswith("2")]
            assert success, (method, path)
            for code, response in responses.items():
                if code.startswith("4"):
                    assert response["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/Error"}, (method, path, code)
            if "{" in path:
                assert "404" in responses, (method, path)
            if method in ("post", "put", "patch"):
                assert {"400", "415"} <= set(responses), (method, path)
                assert "requestBody" in operation or path.endswith("/issue/"), (method, path)


def test_posts_document_the_idempotency_key(schema):
    for path, operations in schema["paths"].items():
        if "post" in operations and not path.startswith("/api/v1/auth/"):
            names = {p["name"] for p in operations["post"].get("parameters", [])}
            assert "Idempotency-Key" in names, path


def test_money_is_a_decimal_string_with_its_exact_pattern(schema):
    components = schema["components"]["schemas"]
    assert components["Order"]["properties"]["total"]["type"] == "string"
    tax = components["OrderInputRequest"]["properties"]["tax"]
    assert (tax["type"], tax["format"], tax["pattern"]) == ("string", "decimal", r"^0*[0-9]{1,13}(\.[0-9]{1,2})?$")
    assert components["Order"]["properties"]["ordered_at"]["format"] == "date-time"


def test_create_bodies_carry_examples(schema):
    for path in ("/api/v1/orders/", "/api/v1/invoices/", "/api/v1/customers/"):
        body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        assert body.get("examples"), path


@pytest.mark.django_db
def test_swagger_ui_and_redoc_are_served(client_for, audrey):
    browser = client_for(audrey)
    assert b"swagger-ui" in browser.get("/api/docs/").content
    assert b"redoc" in browser.get("/api/redoc/").content
    schema = browser.get("/api/schema/?format=json")
    assert schema.status_code == 200 and schema.json()["info"]["title"] == "OMS API"
