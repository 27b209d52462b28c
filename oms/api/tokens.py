"""The token endpoints (kept apart from oms.api.auth, which DRF imports while building its views)."""

from drf_spectacular.utils import extend_schema
from rest_framework_simplejwt import views as jwt_views

from oms.api.throttling import TokenThrottle


@extend_schema(tags=["auth"], summary="Get an access and a refresh token for a user name and password")
class TokenObtainView(jwt_views.TokenObtainPairView):
    throttle_classes = [TokenThrottle]
    public_endpoint = True


@extend_schema(tags=["auth"], summary="Get a new access token for a refresh token")
class TokenRefreshView(jwt_views.TokenRefreshView):
    throttle_classes = [TokenThrottle]
    public_endpoint = True
