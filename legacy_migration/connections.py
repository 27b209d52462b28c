"""The `legacy` connection: one URL, five engines.

SQL Server goes through mssql-django, Oracle through Django's oracle backend on python-oracledb
(cx-Oracle's successor), and the stand-ins through Django's own backends. MariaDB uses PyMySQL
(pure Python) so no C client library has to be built on the machine.
"""

from __future__ import annotations

from typing import Any

import environ

#: Engines the legacy alias accepts, by the vendor name Django reports (connection.vendor).
SUPPORTED_VENDORS = ("microsoft", "oracle", "sqlite", "postgresql", "mysql")


def legacy_database_config(url: str) -> dict[str, Any]:
    """Turn LEGACY_DATABASE_URL into a DATABASES entry, with what each engine needs to be read safely."""
    config = environ.Env.db_url_config(url)
    engine = config["ENGINE"]
    options = config.setdefault("OPTIONS", {})
    if engine == "mssql":
        options.setdefault("driver", "ODBC Driver 18 for SQL Server")
        # The legacy server's certificate is usually internal; trust is a deployment decision.
        options.setdefault("extra_params", "TrustServerCertificate=yes")
    elif engine == "django.db.backends.mysql":
        _use_pymysql()
        options.setdefault("charset", "utf8mb4")
    elif engine == "django.db.backends.oracle":
        _oracle_decimals()
    elif engine == "django.db.backends.sqlite3":
        options.setdefault("timeout", 20)
    # Reads of a legacy table can take long; never keep a transaction open across requests.
    config["ATOMIC_REQUESTS"] = False
    config["CONN_MAX_AGE"] = 0
    config["TEST"] = {"MIRROR": None}
    config["TIME_ZONE"] = None
    config["LEGACY"] = True  # the router's mark: never migrate, never write here
    return config


def _oracle_decimals() -> None:
    import oracledb

    # By default python-oracledb hands NUMBER(19,4) over as a float, which would lose cents.
    # The mapping refuses floats outright; this makes the driver return Decimal instead.
    oracledb.defaults.fetch_decimals = True


def _use_pymysql() -> None:
    import pymysql

    # Django's MySQL backend checks for mysqlclient >= 2.2.1; PyMySQL speaks the same DB-API.
    pymysql.version_info = (2, 2, 1, "final", 0)
    pymysql.install_as_MySQLdb()
