"""Where the customer, order and invoice detail reads come from: modern, legacy, or shadow.

The view sets of those resources take ReadSourceMixin first; legacy_migration/shadow.py has the
whole design. Here is only what HTTP needs:

- `legacy`: the detail is answered from legacy_migration.shadow.legacy_detail, never cached; the
  cache's fast path is off for it (its cached answers are modern ones). 404 when the record has
  no legacy representation, 503 when the legacy database does not answer.
- `shadow`: the answer is made exactly as in `modern` — fast path and cache included — and only
  then, if sampled, handed to the background comparers with the body the client got. Wrapping
  `dispatch` is what makes that hold for both paths: the fast path cannot skip the sampling.
- Every detail answer says where it came from: `X-Read-Source: modern | legacy`.
"""

from __future__ import annotations

from rest_framework import status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.response import Response

from legacy_migration import shadow
from legacy_migration.runner import LegacyUnavailable


class LegacyReadUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "legacy_unavailable"
    default_detail = "Reads of this resource come from the legacy database, which did not answer; retry later."


class ReadSourceMixin:
    #: The resource name in legacy_migration.shadow.RESOURCES (and in READ_SOURCE_<NAME>).
    read_resource: str = ""

    def _detail_read(self, request) -> bool:
        return request.method == "GET" and getattr(self, "action", None) == "retrieve"

    def cached_answer_spec(self, request):
        if self._detail_read(request) and shadow.read_source(self.read_resource) == shadow.LEGACY:
            return None  # legacy answers are not cached, and a cached modern one must not be served
        return super().cached_answer_spec(request)

    def retrieve(self, request, *args, **kwargs):
        if shadow.read_source(self.read_resource) != shadow.LEGACY:
            return super().retrieve(request, *args, **kwargs)
        record_id = int(kwargs[self.lookup_url_kwarg or self.lookup_field])
        try:
            data = shadow.legacy_detail(self.read_resource, record_id)
        except shadow.NoLegacyRecord as exc:
            raise NotFound(str(exc)) from exc
        except LegacyUnavailable as exc:
            raise LegacyReadUnavailable() from exc
        return Response(data)

    def dispatch(self, request, *args, **kwargs):
        response = super().dispatch(request, *args, **kwargs)
        if not self._detail_read(request):
            return response
        source = shadow.read_source(self.read_resource)
        response["X-Read-Source"] = shadow.LEGACY if source == shadow.LEGACY else shadow.MODERN
        if source == shadow.SHADOW and response.status_code == status.HTTP_200_OK and shadow.sampled():
            data = getattr(response, "data", None)
            record_id = int(kwargs[self.lookup_url_kwarg or self.lookup_field])
            shadow.offer_served(resource=self.read_resource, record_id=record_id,
                                served=data if data is not None else response.content, path=request.get_full_path())
        return response
