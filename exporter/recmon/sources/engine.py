"""Database engines that only read, give up after the query timeout and never show a password."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import NullPool

from recmon.config import Source

# Client-side deadlines give the server's own statement timeout this long to answer first, so that
# a slow query fails with the server's clear message rather than with a dropped connection.
GRACE_SECONDS = 5


class SourceError(Exception):
    """A source that cannot be used; the message is safe to log (no password)."""


class SourceUnreachable(SourceError):
    """No connection to the source could be made, or the one in use stopped answering."""


def describe(exc: BaseException) -> str:
    """The database's own first line, without the SQL text SQLAlchemy appends."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip().splitlines()
    return text[0] if text else type(cause).__name__


def unreachable(exc: BaseException) -> bool:
    """Whether `exc` says the source is out of reach, rather than that one query failed."""
    return isinstance(exc, SourceUnreachable) or getattr(exc, "connection_invalidated", False)


@contextmanager
def connect(engine: Engine) -> Iterator[Connection]:
    """`engine.connect()`, where a failure to connect raises SourceUnreachable."""
    try:
        conn = engine.connect()
    except DBAPIError as exc:
        _clear_frames(exc)
        raise SourceUnreachable(describe(exc)) from exc
    with conn:
        yield conn


def _clear_frames(exc: BaseException | None) -> None:
    """Drop the local variables of the frames `exc` and its causes passed through.

    psycopg leaves a timed-out attempt's socket referenced from those frames in a reference
    cycle, so only the cyclic garbage collector would close it: one more open socket per cycle
    for as long as the server hangs.
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if exc.__traceback__ is not None:
            traceback.clear_frames(exc.__traceback__)
        exc = exc.__cause__ or exc.__context__


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
    if backend == "sqlite" and url.database not in (None, "", ":memory:"):
        # Read-only URI mode: a wrong path is an error instead of a new empty database.
        read_only = {**url.query, "mode": "ro", "uri": "true"}
        url = url.set(database=f"file:{url.database}", query=read_only)
    connect_args: dict[str, Any] = {}
    if backend == "postgresql":
        connect_args = {
            "connect_timeout": seconds,
            # A network black hole is noticed by the client too, not only by the server.
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
            "tcp_user_timeout": (seconds + GRACE_SECONDS) * 1000,
            "options": f"-c statement_timeout={seconds * 1000} "
            "-c default_transaction_read_only=on -c TimeZone=UTC",
        }
    elif backend in ("mysql", "mariadb"):
        # The client-side guards when the server never answers, the handshake included.
        deadline = seconds + GRACE_SECONDS
        connect_args = {
            "connect_timeout": seconds,
            "read_timeout": deadline,
            "write_timeout": deadline,
        }
    try:
        # A new connection for each use, closed after it: nothing is held between cycles, a file
        # or server that changed is seen as it is now, and there is no stale pooled connection
        # whose liveness check could itself hang on a server that stopped answering.
        engine = create_engine(url, connect_args=connect_args, poolclass=NullPool)
    except (ArgumentError, ImportError) as exc:
        raise SourceError(f"cannot use {redact(url)}: {exc}") from None
    if backend in ("mysql", "mariadb"):
        event.listen(engine, "connect", _mysql_session(seconds))
    elif backend == "sqlite":
        event.listen(engine, "connect", _sqlite_read_only)
    elif backend == "postgresql":
        _client_deadline(engine, seconds + GRACE_SECONDS)
    return engine


class _Deadline:
    """Shuts a connection's socket down `seconds` from now unless cancelled first."""

    def __init__(self, fileno: int, seconds: float) -> None:
        # Our own descriptor of the socket: it cannot be closed and reused under the timer.
        self._sock = socket.socket(fileno=os.dup(fileno))
        self._lock = threading.Lock()
        self.expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        with self._lock, contextlib.suppress(OSError):  # OSError: the peer closed it already
            if self._sock.fileno() != -1:
                self.expired = True
                self._sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._sock.close()


_DEADLINE = "recmon.deadline"


def _client_deadline(engine: Engine, seconds: int) -> None:
    """Fail a statement that gets no answer within `seconds` by shutting its socket down.

    psycopg has no client-side query timeout, and neither the server's statement_timeout nor TCP
    keepalives end a call to a server (or proxy) that still acknowledges packets but never
    answers: without this, one hung server would block the cycle thread for good.
    """

    def arm(conn: Connection, *_: Any) -> None:
        psycopg_connection: Any = conn.connection.dbapi_connection
        conn.info[_DEADLINE] = _Deadline(psycopg_connection.fileno(), seconds)

    def disarm(conn: Connection | None, *_: Any) -> _Deadline | None:
        deadline = conn.info.pop(_DEADLINE, None) if conn is not None else None
        if deadline is not None:
            deadline.cancel()
        return deadline

    def failed(context: ExceptionContext) -> Exception | None:
        deadline = disarm(context.connection)
        if deadline is None or not deadline.expired:
            return None
        context.is_disconnect = True  # the connection is dead: never reuse it
        return SourceUnreachable(f"no answer within {seconds}s; recmon closed the connection")

    event.listen(engine, "before_cursor_execute", arm)
    event.listen(engine, "after_cursor_execute", disarm)
    event.listen(engine, "handle_error", failed)


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
