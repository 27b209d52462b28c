"""The OpenAPI schema: every operation lists the errors it can give, in the one error format.

tests/api/test_schema.py fails on any drf-spectacular warning, so everything here is explicit.
"""

from __future__ import annotations

from drf_spectacular import openapi
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema_serializer
from rest_framework import serializers

from oms.api.fields import DecimalString
from oms.api.views import ID_MAX, ID_REGEX


class ErrorItemSerializer(serializers.Serializer):
    field = serializers.CharField(allow_null=True, help_text="The field at fault (`lines[0].quantity`), or null.")
    code = serializers.CharField(help_text="Machine-readable reason, e.g. `required`, `invalid_choice`.")
    detail = serializers.CharField(help_text="What is wrong, for a person.")


@extend_schema_serializer(component_name="Error", examples=[
    OpenApiExample("Validation error", status_codes=["400"], value={
        "code": "min_value", "field": "lines[0].quantity",
        "detail": "lines[0].quantity: Ensure this value is greater than or equal to 0.001.",
        "errors": [{"field": "lines[0].quantity", "code": "min_value",
                    "detail": "Ensure this value is greater than or equal to 0.001."}]}),
    OpenApiExample("Illegal transition", status_codes=["409"], value={
        "code": "illegal_transition", "field": "status",
        "detail": "Order SO2025-000042 is Shipped; it cannot become Cancelled. Allowed next: Delivered.",
        "errors": [{"field": "status", "code": "illegal_transition",
                    "detail": "Order SO2025-000042 is Shipped; it cannot become Cancelled. "
                              "Allowed next: Delivered."}]}),
    OpenApiExample("Throttled", status_codes=["429"], value={
        "code": "throttled", "field": None, "detail": "Request was throttled. Expected available in 12 seconds.",
        "errors": [{"field": None, "code": "throttled",
                    "detail": "Request was throttled. Expected available in 12 seconds."}],
        "retry_after": 12}),
])
class ErrorSerializer(serializers.Serializer):
    """Every 4xx answer. `code`, `field` and `detail` describe the first problem; `errors` lists all."""

    code = serializers.CharField()
    field = serializers.CharField(allow_null=True)
    detail = serializers.CharField()
    errors = ErrorItemSerializer(many=True)
    retry_after = serializers.IntegerField(required=False, help_text="Seconds to wait (429 only).")


_ERRORS = {
    "400": "The request is malformed or breaks a business rule (the body names the field).",
    "401": "No credentials, or they are invalid or expired.",
    "403": "The caller's role does not allow this.",
    "404": "No such record.",
    "409": "Not allowed in the record's current status (illegal life-cycle move), or a concurrent change.",
    "415": "The body is not JSON (send Content-Type: application/json).",
    "422": "The Idempotency-Key was already used for a different request.",
    "429": "Too many requests; retry after the number of seconds in the Retry-After header.",
}


def _error_response(code: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=_ERRORS[code])


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's AutoSchema, plus the error answers each kind of operation can give."""

    def _error_codes(self) -> list[str]:
        codes = ["401", "403", "429"]
        if "{" in self.path:
            codes.append("404")
        if self.method == "GET" and self._is_list_view():
            codes.append("400")
        if self.method in ("POST", "PUT", "PATCH"):
            codes += ["400", "409", "415"]
        if self.method == "POST" and getattr(self.view, "idempotent_actions", None) is not None:
            if getattr(self.view, "action", None) in self.view.idempotent_actions:
                codes.append("422")
        if getattr(self.view, "public_endpoint", False):  # the token endpoints
            codes = ["400", "401", "415", "429"]
        return codes

    def _resolve_path_parameters(self, variables):
        # Ids are matched by the regex [0-9]{1,18} (so they always fit a bigint); publish them as integers.
        parameters = super()._resolve_path_parameters(variables)
        for parameter in parameters:
            if parameter["schema"].get("pattern") == f"^{ID_REGEX}$":
                parameter["schema"] = {"type": "integer", "format": "int64", "minimum": 0, "maximum": ID_MAX}
        return parameters

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in self._error_codes():
            if code not in responses:
                responses[code] = self._get_response_for_code(_error_response(code), code, direction=direction)
        return responses


class DecimalStringExtension(OpenApiSerializerFieldExtension):
    """Decimals as strings, with the exact pattern the API accepts (no exponent, no sign for amounts)."""

    target_class = DecimalString
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        field = self.target
        schema = {"type": "string", "format": "decimal", "pattern": field.pattern,
                  "example": f"{12.5:.{field.decimal_places}f}"}
        return schema


class OmsJWTScheme(SimpleJWTScheme):
    target_class = "oms.api.auth.JWTAuthentication"
    name = "jwtAuth"
