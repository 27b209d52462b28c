"""Serializer building blocks shared by the resources."""

from __future__ import annotations

import copy
from collections.abc import Mapping

from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from oms.api.fields import DecimalString, ZonedDateTime


class StrictInput(serializers.Serializer):
    """An input body that refuses fields it does not know: a typo ("discout") must not be ignored.

    Read-only fields of the resource are accepted and ignored, so a client can PUT back what
    it read.
    """

    #: Output-only names a client may echo back without error.
    echo_ok: frozenset[str] = frozenset()

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields) - self.echo_ok)
            if unknown:
                raise serializers.ValidationError(
                    {name: [ErrorDetail("Unknown field.", code="unknown_field")] for name in unknown})
        return super().to_internal_value(data)


class ReasonInput(StrictInput):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000,
                                   help_text="Why; required to cancel or void.")


class OutputModelSerializer(serializers.ModelSerializer):
    """A read-only representation: times in UTC with a zone, decimals as strings.

    The fields are worked out from the model once per class, then copied for each instance:
    ModelSerializer would otherwise introspect the model for every order of every response
    (the largest single cost of an uncached answer). Safe because these fields never depend on
    the request or the instance.
    """

    def get_fields(self):
        template = type(self).__dict__.get("_field_template")
        if template is None:
            template = super().get_fields()
            type(self)._field_template = template
        return copy.deepcopy(template)

    def build_standard_field(self, field_name, model_field):
        field_class, kwargs = super().build_standard_field(field_name, model_field)
        if field_class is serializers.DateTimeField:
            field_class = ZonedDateTime
        elif field_class is serializers.DecimalField:
            field_class = DecimalString
        return field_class, kwargs
