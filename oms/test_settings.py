"""Settings for the test suite: the real services, defaulting to the local PostgreSQL and Redis.

`make test` (and CI) run against PostgreSQL and Redis, never SQLite or a fake cache. Override
with DATABASE_URL / REDIS_URL to point elsewhere.
"""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/oms")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("CACHE_KEY_PREFIX", "oms-test")

from oms.settings import *  # noqa: E402,F403

# Hashing passwords at full strength only slows the suite down.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
WHITENOISE_AUTOREFRESH = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# ---------------------------------------------------------------------------------------------
# Legacy stand-ins. Names derive from the default database's name so that several checkouts (or
# engineers) can run the suite side by side without sharing a legacy test database.
# ---------------------------------------------------------------------------------------------
from legacy_migration.connections import legacy_database_config  # noqa: E402

_suffix = DATABASES["default"]["NAME"]  # noqa: F405
VAR_DIR.mkdir(exist_ok=True)  # noqa: F405
DATABASES["legacy"] = legacy_database_config(  # noqa: F405
    os.environ.get("TEST_LEGACY_DATABASE_URL", f"sqlite:///{VAR_DIR}/{_suffix}_legacy.sqlite3")  # noqa: F405
)
# A file, not :memory:, so that a migration run in a subprocess (the kill -9 tests) sees the same data.
DATABASES["legacy"]["TEST"] = {"NAME": str(VAR_DIR / f"test_{_suffix}_legacy.sqlite3")}  # noqa: F405
DATABASES["legacy_postgres"] = legacy_database_config(f"postgres://postgres@127.0.0.1:5432/{_suffix}_legacy")  # noqa: F405
DATABASES["legacy_mariadb"] = legacy_database_config(  # noqa: F405
    os.environ.get("LEGACY_MARIADB_URL", f"mysql://root@127.0.0.1:3306/{_suffix}_legacy")
)
