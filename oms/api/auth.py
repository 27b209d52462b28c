"""Authentication: JWT bearer tokens for machines, the Django session for people in a browser.

Why JWT (djangorestframework-simplejwt) rather than DRF's stored tokens: it is what the original
design planned; an access token is short-lived (JWT_ACCESS_MINUTES, 15 by default) so a leaked
one expires on its own; nothing secret is stored in the database (DRF tokens sit there in clear
text); and a machine account is an ordinary user in a role group, so it is switched off at once
by deactivating the user (every request re-reads the user and refuses an inactive one).
Machines POST username/password to /api/v1/auth/token/ and refresh at /api/v1/auth/token/refresh/.
"""

from __future__ import annotations

from rest_framework_simplejwt.authentication import JWTAuthentication as SimpleJWTAuthentication


class JWTAuthentication(SimpleJWTAuthentication):
    www_authenticate_realm = "oms"


# ---------------------------------------------------------------------------------------------
# Token endpoints
# ---------------------------------------------------------------------------------------------
from drf_spectacular.utils import extend_schema  # noqa: E402
from rest_framework_simplejwt import views as jwt_views  # noqa: E402

from oms.api.throttling import TokenThrottle  # noqa: E402


@extend_schema(tags=["auth"], summary="Get an access and a refresh token for a user name and password")
class TokenObtainView(jwt_views.TokenObtainPairView):
    throttle_classes = [TokenThrottle]
    public_endpoint = True


@extend_schema(tags=["auth"], summary="Get a new access token for a refresh token")
class TokenRefreshView(jwt_views.TokenRefreshView):
    throttle_classes = [TokenThrottle]
    public_endpoint = True
