"""`--web.config.file` in the Prometheus exporter-toolkit format: TLS and basic auth.

The file is read again when it changes (checked on each connection and request), so certificates
and users rotate without a restart; a broken new file is logged and the last good one stays.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import bcrypt
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recmon.config import ConfigError
from recmon.config.errors import Problem

log = logging.getLogger("recmon.web")

TlsVersion = Literal["TLS10", "TLS11", "TLS12", "TLS13"]
ClientAuth = Literal[
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
]
_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
# Checked when the user is unknown, so that a wrong name costs as long as a wrong password.
_DUMMY_HASH = bcrypt.hashpw(b"recmon", bcrypt.gensalt(rounds=10))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsServerConfig(_Strict):
    cert_file: str
    key_file: str
    client_auth_type: ClientAuth = "NoClientCert"
    client_ca_file: str | None = None
    min_version: TlsVersion = "TLS12"
    max_version: TlsVersion = "TLS13"
    # Accepted for compatibility with the toolkit's files; Python's defaults are used.
    cipher_suites: list[str] = Field(default_factory=list)
    curve_preferences: list[str] = Field(default_factory=list)
    prefer_server_cipher_suites: bool = True


class HttpServerConfig(_Strict):
    http2: bool = True  # accepted for compatibility; recmon serves HTTP/1.1
    headers: dict[str, str] = Field(default_factory=dict)


class WebConfigFile(_Strict):
    tls_server_config: TlsServerConfig | None = None
    http_server_config: HttpServerConfig = Field(default_factory=HttpServerConfig)
    basic_auth_users: dict[str, str] = Field(default_factory=dict)


@dataclass(frozen=True)
class WebConfig:
    tls: ssl.SSLContext | None
    users: dict[str, bytes]  # user -> bcrypt hash
    headers: dict[str, str]


def load_web_config(path: str | Path) -> WebConfig:
    """Parse and check the file (certificates load, hashes are bcrypt); raise ConfigError."""
    name = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        parsed = WebConfigFile.model_validate(data)
    except OSError as exc:
        problem = Problem(None, "web.config.file", f"cannot read: {exc.strerror}")
        raise ConfigError(name, [problem]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(name, [Problem(None, "yaml", str(exc).splitlines()[0])]) from None
    except ValidationError as exc:
        raise ConfigError(
            name,
            [
                Problem(
                    None,
                    ".".join(map(str, e["loc"])) or "config",
                    "unknown key" if e["type"] == "extra_forbidden" else e["msg"],
                )
                for e in exc.errors()
            ],
        ) from None
    users = {}
    for user, hashed in parsed.basic_auth_users.items():
        if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise ConfigError(
                name, [Problem(None, f"basic_auth_users.{user}", "not a bcrypt hash")]
            )
        users[user] = hashed.encode()
    tls = None
    if parsed.tls_server_config is not None:
        tls = _tls_context(name, Path(path).parent, parsed.tls_server_config)
    return WebConfig(tls, users, parsed.http_server_config.headers)


def _tls_context(name: str, base: Path, conf: TlsServerConfig) -> ssl.SSLContext:
    def resolve(file: str) -> str:
        return str(base / file) if not os.path.isabs(file) else file

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _VERSIONS[conf.min_version]
    context.maximum_version = _VERSIONS[conf.max_version]
    try:
        context.load_cert_chain(resolve(conf.cert_file), resolve(conf.key_file))
        if conf.client_ca_file:
            context.load_verify_locations(resolve(conf.client_ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            name, [Problem(None, "tls_server_config", f"cannot load: {exc}")]
        ) from None
    if conf.client_auth_type in ("RequireAnyClientCert", "RequireAndVerifyClientCert"):
        context.verify_mode = ssl.CERT_REQUIRED
    elif conf.client_auth_type != "NoClientCert":
        context.verify_mode = ssl.CERT_OPTIONAL
    if context.verify_mode != ssl.CERT_NONE and not conf.client_ca_file:
        raise ConfigError(
            name,
            [
                Problem(
                    None, "tls_server_config.client_ca_file", f"needed for {conf.client_auth_type}"
                )
            ],
        )
    return context


class WebConfigWatcher:
    """The current web config, reloaded when the file's modification time or size changes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._stamp = self._stat()
        self._config = load_web_config(self.path)
        self._lock = threading.Lock()
        self._verified: dict[tuple[str, bytes], bool] = {}

    def current(self) -> WebConfig:
        with self._lock:
            stamp = self._stat()
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    self._config = load_web_config(self.path)
                    self._verified.clear()
                    log.info("web config reloaded", extra={"file": str(self.path)})
                except ConfigError as exc:
                    log.error(
                        "web config rejected; keeping the previous one", extra={"error": str(exc)}
                    )
            return self._config

    def authorized(self, header: str | None) -> bool:
        """Whether an Authorization header passes basic auth (always, without users)."""
        users = self.current().users
        if not users:
            return True
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        hashed = users.get(user, _DUMMY_HASH)
        # bcrypt is slow on purpose; remember answers (keyed by a digest, not the password).
        key = (user, hashlib.sha256(password.encode() + hashed).digest())
        with self._lock:
            known = self._verified.get(key)
        if known is None:
            known = bcrypt.checkpw(password.encode(), hashed) and user in users
            with self._lock:
                if len(self._verified) > 1000:  # random passwords must not grow it forever
                    self._verified.clear()
                self._verified[key] = known
        return known

    def _stat(self) -> tuple[float, int] | None:
        try:
            info = self.path.stat()
        except OSError:
            return None
        return info.st_mtime, info.st_size
