from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

admin.site.site_header = "OMS back office"
admin.site.site_title = "OMS back office"
admin.site.index_title = "Order desk"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
]
