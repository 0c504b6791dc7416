"""Structured logs (logfmt or JSON) on stderr, with passwords in URLs redacted."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@", re.IGNORECASE)
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


_SECRET_PARAMETER = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd|sslpassword|token|secret|api_?key)=)[^&\s;'\"]+",
    re.IGNORECASE,
)


def redact_text(text: str) -> str:
    """Replace the password of any URL in `text`, and secret-looking key=value pairs, with ***."""
    return _SECRET_PARAMETER.sub(r"\g<key>***", _URL_PASSWORD.sub(r"\g<scheme>***@", text))


def _fields(record: logging.LogRecord) -> dict[str, object]:
    fields: dict[str, object] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    fields.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
    if record.exc_info:
        fields["exception"] = logging.Formatter().formatException(record.exc_info)
    return {k: redact_text(str(v)) if isinstance(v, str) else v for k, v in fields.items()}


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in _fields(record).items())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record), default=str)


def _logfmt_value(value: object) -> str:
    text = str(value)
    if text and not any(c in text for c in ' ="\n\\'):
        return text
    return json.dumps(text)


def setup(level: str = "info", fmt: str = "logfmt") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
