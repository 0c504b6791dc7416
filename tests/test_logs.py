from __future__ import annotations

import json
import logging

import pytest

from recmon import logs


def record(msg: str, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("recmon.test", logging.ERROR, __file__, 1, msg, None, None)
    rec.__dict__.update(extra)
    return rec


def test_logfmt_quotes_values_and_keeps_fields() -> None:
    line = logs.LogfmtFormatter().format(record("source failed", source="main", error='a "b"'))
    assert " level=error logger=recmon.test " in line
    assert 'msg="source failed" source=main error="a \\"b\\""' in line


def test_json_is_one_object_per_line() -> None:
    fields = json.loads(logs.JsonFormatter().format(record("listening", address=":9747")))
    assert (fields["msg"], fields["address"], fields["level"]) == ("listening", ":9747", "error")


@pytest.mark.parametrize("formatter", [logs.LogfmtFormatter(), logs.JsonFormatter()])
def test_passwords_in_urls_are_redacted(formatter: logging.Formatter) -> None:
    text = formatter.format(
        record("cannot use postgresql://app:s3cr%40t@db:5432/x", dsn="mysql+pymysql://u:pw@h/d")
    )
    assert "s3cr" not in text and ":pw@" not in text
    assert "postgresql://app:***@db:5432/x" in text and "mysql+pymysql://u:***@h/d" in text


def test_secret_query_parameters_are_redacted() -> None:
    from recmon.sources.engine import redact

    assert redact("postgresql://u@h/db?password=s3cret&sslmode=require") == (
        "postgresql://u@h/db?password=***&sslmode=require"
    )
    assert "s3cret" not in logs.redact_text("cannot use mysql+pymysql://u@h/d?passwd=s3cret now")
    assert "s3cret" not in logs.redact_text("odbc: DRIVER=x;PWD=s3cret;UID=u")
