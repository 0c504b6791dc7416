"""--web.config.file: real TLS with certificates made here, basic auth with bcrypt, and a real
Prometheus scraping recmon over both."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
import requests

from recmon.web.webconfig import WebConfigWatcher
from tests.support.stack import prometheus, wait_for
from tests.test_cli import recmon
from tests.test_serve import serving


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway CA and a server certificate for 127.0.0.1 that it signed."""
    d = tmp_path_factory.mktemp("certs")
    key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl(
        "req",
        "-x509",
        *key,
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "1",
        "-subj",
        "/CN=recmon test CA",
        cwd=d,
    )
    openssl(
        "req", *key, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=d
    )
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "1",
        "-extfile",
        "san.cnf",
        cwd=d,
    )
    return d


@pytest.fixture(scope="module")
def secure(certs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    d = tmp_path_factory.mktemp("secure")
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=10)).decode()
    web = d / "web.yml"
    web.write_text(
        f"tls_server_config:\n  cert_file: {certs / 'server.crt'}\n"
        f"  key_file: {certs / 'server.key'}\n  min_version: TLS12\n"
        f"basic_auth_users:\n  prometheus: '{hashed}'\n"
    )
    config = d / "recmon.yml"
    config.write_text(f"sources:\n  main: {{dsn: 'sqlite:///{d / 'missing.db'}'}}\ninterval: 1s\n")
    ready = {"verify": certs / "ca.crt", "auth": ("prometheus", "s3cret")}
    with serving(config, "--web.config.file", str(web), scheme="https", **ready) as base:
        yield base


def test_basic_auth_over_tls(secure: str, certs: Path) -> None:
    ca = certs / "ca.crt"
    good = requests.get(f"{secure}/metrics", auth=("prometheus", "s3cret"), verify=ca, timeout=5)
    assert good.status_code == 200 and "recmon_source_up" in good.text
    wrong = requests.get(f"{secure}/metrics", auth=("prometheus", "nope"), verify=ca, timeout=5)
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"] == 'Basic realm="recmon"'
    unknown = requests.get(f"{secure}/metrics", auth=("mallory", "s3cret"), verify=ca, timeout=5)
    assert unknown.status_code == 401
    assert requests.get(f"{secure}/metrics", verify=ca, timeout=5).status_code == 401
    assert requests.get(f"{secure}/", verify=ca, timeout=5).status_code == 401


def test_plain_http_to_the_tls_port_fails(secure: str) -> None:
    with pytest.raises(requests.ConnectionError):
        requests.get(secure.replace("https://", "http://") + "/metrics", timeout=5)


def test_prometheus_scrapes_with_tls_and_basic_auth(
    secure: str, certs: Path, tmp_path: Path
) -> None:
    target = secure.removeprefix("https://")
    jobs = {"good": "s3cret", "bad": "wrong"}
    scrape = "".join(
        f"""  - job_name: {job}
    scrape_interval: 1s
    scheme: https
    tls_config: {{ca_file: {certs / "ca.crt"}}}
    basic_auth: {{username: prometheus, password: {password}}}
    static_configs: [{{targets: ['{target}']}}]
"""
        for job, password in jobs.items()
    )
    (tmp_path / "prometheus.yml").write_text(f"scrape_configs:\n{scrape}")

    def scraped(base: str) -> dict[str, dict] | None:
        answer = requests.get(f"{base}/api/v1/targets", timeout=2).json()
        health = {t["labels"]["job"]: t for t in answer["data"]["activeTargets"]}
        done = set(health) == set(jobs) and all(t["health"] != "unknown" for t in health.values())
        return health if done else None

    with prometheus(tmp_path / "prometheus.yml", tmp_path) as base:
        health = wait_for("scrape results", lambda: scraped(base))
    assert health["good"]["health"] == "up", health["good"]["lastError"]
    assert health["bad"]["health"] == "down" and "401" in health["bad"]["lastError"]


def test_a_bad_web_config_stops_serve(tmp_path: Path) -> None:
    config = tmp_path / "recmon.yml"
    config.write_text("sources:\n  main: {dsn: 'sqlite://'}\n")
    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users:\n  admin: plaintext\n")
    result = recmon("serve", "--config.file", str(config), "--web.config.file", str(web))
    assert result.returncode == 1
    assert result.stderr == f"recmon: {web}: basic_auth_users.admin: not a bcrypt hash\n"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_the_file_is_reread_on_change_and_a_broken_one_is_ignored(tmp_path: Path) -> None:
    web = tmp_path / "web.yml"

    def users(password: bytes) -> None:
        hashed = bcrypt.hashpw(password, bcrypt.gensalt(rounds=4)).decode()
        web.write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n")

    users(b"first")
    watcher = WebConfigWatcher(web)
    assert watcher.authorized(basic("prometheus", "first"))
    users(b"second-password")  # a different size, so the change shows even within one mtime tick
    assert watcher.authorized(basic("prometheus", "second-password"))
    assert not watcher.authorized(basic("prometheus", "first"))
    web.write_text("basic_auth_users: [broken\n")
    assert watcher.authorized(basic("prometheus", "second-password"))  # the last good file
