"""Database engines that only read, give up after the query timeout and never show a password."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import NullPool

from recmon.config import Source


class SourceError(Exception):
    """A source that cannot be used; the message is safe to log (no password)."""


_SECRET_PARAMETERS = (
    "password",
    "passwd",
    "pwd",
    "sslpassword",
    "token",
    "secret",
    "odbc_connect",
    "api_key",
    "apikey",
    "access_key",
    "private_key",
)


def redact(url: str | URL) -> str:
    """The URL with its password, and any query parameter that may hold one, replaced by ***."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "<unparsable dsn>"
    hidden = {k: "***" for k in parsed.query if k.lower() in _SECRET_PARAMETERS}
    rendered = parsed.update_query_dict(hidden).render_as_string(hide_password=True)
    return rendered.replace("%2A%2A%2A", "***")  # the URL encoder escapes the mask


def open_engine(source: Source, timeout: timedelta) -> Engine:
    """An engine for `source` whose sessions are read-only and whose statements time out."""
    try:
        url = make_url(source.dsn.get_secret_value())
    except ArgumentError:
        raise SourceError("dsn is not a valid SQLAlchemy URL") from None
    seconds = max(1, int(timeout.total_seconds()))
    backend = url.get_backend_name()
    options: dict[str, Any] = {"pool_pre_ping": True}
    if backend == "sqlite" and url.database not in (None, "", ":memory:"):
        # Read-only URI mode: a wrong path is an error instead of a new empty database.
        read_only = {**url.query, "mode": "ro", "uri": "true"}
        url = url.set(database=f"file:{url.database}", query=read_only)
        # Reopen the file every cycle: a replaced or removed file is then seen as it is now.
        options = {"poolclass": NullPool}
    connect_args: dict[str, Any] = {}
    if backend == "postgresql":
        connect_args = {
            "connect_timeout": seconds,
            # A network black hole is noticed by the client too, not only by the server.
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
            "tcp_user_timeout": (seconds + 5) * 1000,
            "options": f"-c statement_timeout={seconds * 1000} "
            "-c default_transaction_read_only=on -c TimeZone=UTC",
        }
    elif backend in ("mysql", "mariadb"):
        # read_timeout is the client-side guard when the server never answers.
        connect_args = {"connect_timeout": seconds, "read_timeout": seconds + 5}
    try:
        engine = create_engine(url, connect_args=connect_args, **options)
    except (ArgumentError, ImportError) as exc:
        raise SourceError(f"cannot use {redact(url)}: {exc}") from None
    if backend in ("mysql", "mariadb"):
        event.listen(engine, "connect", _mysql_session(seconds))
    elif backend == "sqlite":
        event.listen(engine, "connect", _sqlite_read_only)
    return engine


def _mysql_session(seconds: int) -> Any:
    def configure(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            try:  # MariaDB counts in seconds, MySQL in milliseconds under another name
                cursor.execute(f"SET SESSION max_statement_time = {seconds}")
            except Exception:
                cursor.execute(f"SET SESSION max_execution_time = {seconds * 1000}")
            cursor.execute("SET SESSION TRANSACTION READ ONLY")
            cursor.execute("SET SESSION time_zone = '+00:00'")

    return configure


def _sqlite_read_only(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA query_only = ON")
