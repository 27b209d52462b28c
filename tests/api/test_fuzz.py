"""Property-based run of the OpenAPI schema (schemathesis): valid and invalid requests to every
operation, as a superuser so every write path is reached. No 5xx, and every answer — success or
error — has a documented status, content type and body shape.

Deterministic (derandomized) so that a failure reproduces; FUZZ_EXAMPLES raises the depth.
"""

from __future__ import annotations

import json
import os

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from django.db import connection
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from rest_framework_simplejwt.tokens import AccessToken
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import CustomerFactory, make_confirmed_order, make_issued_invoice, make_order

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _schema():
    document = SchemaGenerator().get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(json.loads(OpenApiJsonRenderer().render(document)))
    loaded.app = get_wsgi_application()
    return loaded


@pytest.mark.django_db(transaction=True, reset_sequences=True)
def test_fuzzing_every_operation_finds_no_5xx_and_no_answer_outside_the_schema(alice, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        "user": "100000/min", "anon": "100000/min", "token": "100000/min"}}
    # Low ids exist, so generated ids often reach real records in every state.
    customer = CustomerFactory()
    make_order(customer=customer)
    make_confirmed_order(customer=customer)
    make_issued_invoice(customer=customer)
    headers = {"Authorization": f"Bearer {AccessToken.for_user(alice)}"}
    with connection.cursor() as cursor:
        # Hundreds of small commits: durability of this throw-away database is not what is tested.
        cursor.execute("SET synchronous_commit TO off")

    failures: list[str] = []
    calls = 0
    for result in _schema().get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @hypothesis_settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                                 phases=[Phase.explicit, Phase.generate],
                                 suppress_health_check=list(HealthCheck))
            def exercise(case):
                nonlocal calls
                calls += 1
                response = case.call(headers=headers)
                case.validate_response(response, checks=CHECKS)

            try:
                exercise()
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collected: one run reports them all
                failures.append(f"{operation.label} [{mode.value}]: {exc}"[:1500])
    assert calls > 100
    assert not failures, "\n\n".join(failures)
