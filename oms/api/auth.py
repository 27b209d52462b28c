"""Authentication: JWT bearer tokens for machines, the Django session for people in a browser.

Why JWT (djangorestframework-simplejwt) rather than DRF's stored tokens: it is what the original
design planned; an access token is short-lived (JWT_ACCESS_MINUTES, 15 by default) so a leaked
one expires on its own; nothing secret is stored in the database (DRF tokens sit there in clear
text); and a machine account is an ordinary user in a role group, so it is switched off at once
by deactivating the user (every request checks the user and refuses an inactive one).
Machines POST username/password to /api/v1/auth/token/ and refresh at /api/v1/auth/token/refresh/.

The user behind a token — active or not, superuser or not, and the set of their permissions —
is read through oms.cache (the "principal"), so a request answered from the cache makes no
database query at all. Any change to users, groups or permissions makes every principal stale
(signals below), at once and again on commit.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db.models.signals import m2m_changed, post_delete, post_save
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication as SimpleJWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from oms.cache import hot_cache

User = get_user_model()


def _load_principal(user_id: int) -> dict:
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        return {}  # cached too: a token of a deleted user must not cost a query per request
    return {"id": user.pk, "username": user.get_username(), "is_active": user.is_active,
            "is_staff": user.is_staff, "is_superuser": user.is_superuser,
            "permissions": sorted(user.get_all_permissions()) if user.is_active else []}


def principal_spec(user_id: int) -> tuple[str, None, str]:
    """The principal's (kind, ident, key) in oms.cache."""
    return "principal", None, f"user:{user_id}"


def principal_user(user_id: int, prefetched=None):
    """The user with this id, built from the cached principal (permissions included), or None."""
    kind, ident, key = principal_spec(user_id)
    principal, _ = hot_cache.fetch(kind=kind, ident=ident, key=key, build=lambda: _load_principal(user_id),
                                   prefetched=prefetched)
    if not principal:
        return None
    user = User(id=principal["id"], is_active=principal["is_active"], is_staff=principal["is_staff"],
                is_superuser=principal["is_superuser"], **{User.USERNAME_FIELD: principal["username"]})
    # What ModelBackend would compute with two queries; has_perm() reads it from here.
    user._perm_cache = set(principal["permissions"])
    return user


def invalidate_principals(**kwargs) -> None:
    """Now, and again after commit: a revoked user must not keep working until the transaction ends."""
    hot_cache.bump(["t:principal"])
    hot_cache.invalidate("principal", None)


for _sender in (User, Group, Permission):
    post_save.connect(invalidate_principals, sender=_sender, dispatch_uid=f"oms-principal-save-{_sender.__name__}")
    post_delete.connect(invalidate_principals, sender=_sender, dispatch_uid=f"oms-principal-del-{_sender.__name__}")
for _through in (User.groups.through, User.user_permissions.through, Group.permissions.through):
    m2m_changed.connect(invalidate_principals, sender=_through, dispatch_uid=f"oms-principal-m2m-{_through.__name__}")


class _VerifiedTokens:
    """Tokens whose signature this process already checked, until they expire.

    Verifying an HS256 signature and parsing the claims is a sizeable share of a cached answer's
    cost; the same machine sends the same token for its whole lifetime. The expiry is checked
    on every use, and the user behind the token is still checked on every request.
    """

    def __init__(self, size: int = 4096):
        self.size = size
        self._tokens: OrderedDict[bytes, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, raw: bytes):
        token = self._tokens.get(raw)
        if token is None:
            return None
        if token.payload.get("exp", 0) <= time.time():
            with self._lock:
                self._tokens.pop(raw, None)
            return None
        return token

    def put(self, raw: bytes, token) -> None:
        with self._lock:
            self._tokens[raw] = token
            while len(self._tokens) > self.size:
                self._tokens.popitem(last=False)


_verified = _VerifiedTokens()


class JWTAuthentication(SimpleJWTAuthentication):
    www_authenticate_realm = "oms"

    def authenticate(self, request):
        self._prefetched = getattr(request, "oms_prefetch", None)
        return super().authenticate(request)

    def get_validated_token(self, raw_token):
        token = _verified.get(raw_token)
        if token is None:
            token = super().get_validated_token(raw_token)
            _verified.put(raw_token, token)
        return token

    @classmethod
    def peek_user_id(cls, request) -> int | None:
        """The user id of a valid bearer token, or None; no database, no exception."""
        auth = _PEEKER
        header = auth.get_header(request)
        raw = auth.get_raw_token(header) if header is not None else None
        if raw is None:
            return None
        try:
            return int(auth.get_validated_token(raw)[jwt_settings.USER_ID_CLAIM])
        except (InvalidToken, KeyError, TypeError, ValueError, AuthenticationFailed):
            return None

    def get_user(self, validated_token):
        try:
            user_id = int(validated_token[jwt_settings.USER_ID_CLAIM])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidToken("Token contained no recognizable user identification") from exc
        user = principal_user(user_id, prefetched=getattr(self, "_prefetched", None))
        if user is None:
            raise AuthenticationFailed("User not found", code="user_not_found")
        if not user.is_active:
            raise AuthenticationFailed("User is inactive", code="user_inactive")
        return user


#: The one instance peek_user_id reads tokens with: it keeps no per-request state, and building
#: one per request (get_user_model() and friends) is a visible share of a cached answer's cost.
_PEEKER = JWTAuthentication()
