from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from django.views.generic import RedirectView

admin.site.site_header = "OMS back office"
admin.site.site_title = "OMS back office"
admin.site.index_title = "Order desk"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    # The REST API, its docs (schema, Swagger UI, Redoc) and the browsable API's session login.
    path("api/v1/", include("oms.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("api/auth/", include("rest_framework.urls")),
    path("health/", include("oms.health")),
]
# Unknown URLs and crashes under /api/ answer in the API's JSON error format; elsewhere, Django's pages.
handler404 = "oms.api.errors.not_found"
handler500 = "oms.api.errors.server_error"
