"""docker-compose.yml and what it mounts, checked statically (no Docker engine runs here): the
compose-spec schema, pinned images, mounts that exist and agree with the configs reading them,
secrets only as files, one published port, healthchecks, and command flags the pinned versions
accept."""

from __future__ import annotations

import importlib.resources
import json
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from recmon.cli import _parser
from recmon.config import load_config
from recmon.generate import DASHBOARD_DIRECTORY
from tests.support.stack import binary

ROOT = Path(__file__).resolve().parent.parent
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
# The files where a password could hide: the stack's configs and what builds it.
STACK_FILES = [
    ROOT / "docker-compose.yml",
    ROOT / "Dockerfile",
    ROOT / "grafana" / "grafana.ini",
    *sorted((ROOT / "grafana" / "provisioning").rglob("*.yml")),
    ROOT / "examples" / "compose.yml",
    ROOT / "prometheus" / "compose.yml",
]


def mounts(service: str) -> dict[str, str]:
    """Bind mounts of a service: container path -> repository path."""
    result = {}
    for volume in SERVICES[service].get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            result[target] = source
    return result


def secret_targets(service: str) -> dict[str, str]:
    """Secret name -> where the container sees it."""
    result = {}
    for secret in SERVICES[service].get("secrets", []):
        if isinstance(secret, str):
            result[secret] = f"/run/secrets/{secret}"
        else:
            result[secret["source"]] = secret["target"]
    return result


def test_compose_file_follows_the_compose_spec() -> None:
    # check-jsonschema (a dev dependency) vendors the compose-spec schema: no network needed.
    schema_file = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads((schema_file / "compose-spec.json").read_text())
    jsonschema.validate(COMPOSE, schema, cls=jsonschema.Draft202012Validator)
    assert set(SERVICES) == {"postgres", "seed", "recmon", "prometheus", "alertmanager", "grafana"}


def test_every_image_has_an_exact_version() -> None:
    for name, service in SERVICES.items():
        image = service["image"]
        # PostgreSQL's releases are major.minor (16.4); the others are major.minor.patch.
        version = r"\d+\.\d+" if image.startswith("postgres:") else r"v?\d+\.\d+\.\d+"
        assert re.fullmatch(rf"[\w./-]+:{version}", image), f"{name}: {image} is not pinned"
        if "build" in service:  # recmon's own image carries the package version
            assert image == f"recmon:{VERSION}", name
    dockerfile = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)", dockerfile, re.MULTILINE)[1]
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base), base
    assert re.search(r'pip install "[^"]*\[postgres\]"', dockerfile)
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    ignore = [line for line in lines if line and not line.startswith("#")]
    assert ignore[0] == "*" and not any("secrets" in line for line in ignore), ignore


def test_mounts_exist_read_only_and_match_the_configs() -> None:
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source, _, *options = volume.split(":")
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source} is not in the repository"
                assert options == ["ro"], f"{name}: {source} must be mounted read-only"
            else:
                assert source in COMPOSE["volumes"], f"{name}: {source} is no named volume"
    # Each program finds what it reads where the mounts put it.
    assert mounts("recmon") == {"/etc/recmon/recmon.yml": "./examples/compose.yml"}
    assert "--config.file" in SERVICES["recmon"]["command"]
    assert mounts("prometheus") == {
        "/etc/prometheus/prometheus.yml": "./prometheus/compose.yml",
        "/etc/prometheus/rules": "./prometheus/rules",
    }
    assert yaml.safe_load((ROOT / "prometheus/compose.yml").read_text())["rule_files"] == [
        "rules/*.yml"
    ]
    assert mounts("alertmanager") == {
        "/etc/alertmanager/alertmanager.yml": "./alertmanager/alertmanager.yml",
        "/etc/alertmanager/templates": "./alertmanager/templates",
    }
    grafana = mounts("grafana")
    provider = yaml.safe_load((ROOT / "grafana/provisioning/dashboards/recmon.yml").read_text())
    assert grafana[provider["providers"][0]["options"]["path"]] == f"./{DASHBOARD_DIRECTORY}"
    assert grafana["/etc/grafana/provisioning"] == "./grafana/provisioning"
    assert grafana["/etc/grafana/grafana.ini"] == "./grafana/grafana.ini"
    home = Path(re.search(r"^default_home_dashboard_path = (\S+)", ini(), re.MULTILINE)[1])
    assert str(home.parent) == provider["providers"][0]["options"]["path"]
    assert (ROOT / DASHBOARD_DIRECTORY / home.name).exists()


def ini() -> str:
    return (ROOT / "grafana" / "grafana.ini").read_text()


def test_secrets_are_files_given_where_each_config_reads_them() -> None:
    defined = COMPOSE["secrets"]
    for name, secret in defined.items():
        assert secret == {"file": f"./secrets/{name}"}, name
    for name, service in SERVICES.items():
        assert set(secret_targets(name)) <= set(defined), name
        for key in service.get("environment", {}):
            assert not re.search(r"PASSWORD|SECRET|TOKEN|KEY", key) or key.endswith("_FILE"), key
    assert (
        SERVICES["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"]
        == (secret_targets("postgres")["postgres_password"])
    )
    recmon_dsn = "/run/secrets/recmon_dsn"
    config = yaml.safe_load((ROOT / "examples/compose.yml").read_text())
    assert config["sources"]["demo"] == {"dsn_file": recmon_dsn}
    assert secret_targets("recmon") == {"recmon_dsn": recmon_dsn}
    assert secret_targets("seed") == {"recmon_dsn": recmon_dsn}
    # Alertmanager reads every *_file path of its config from a secret.
    alertmanager = (ROOT / "alertmanager/alertmanager.yml").read_text()
    read = set(re.findall(r"_file: (\S+)", alertmanager))
    assert read == set(secret_targets("alertmanager").values())
    # Grafana: every $__file{} of an active line is a secret it is given.
    active = "\n".join(line for line in ini().splitlines() if not line.startswith((";", "#")))
    assert set(re.findall(r"\$__file\{(\S+?)\}", active)) == set(secret_targets("grafana").values())


def test_no_default_or_inline_password() -> None:
    for path in STACK_FILES:
        text = path.read_text()
        where = path.relative_to(ROOT)
        assert not re.search(r"://[^/\s:@]+:[^/\s@]+@", text), f"{where}: credentials in a URL"
        # Comment lines are prose, but for grafana.ini's commented-out settings (`;`).
        for line in (line for line in text.splitlines() if not line.lstrip().startswith("#")):
            setting = re.search(
                r"(\w*(?:password|secret|token|api_key)\w*)\s*[=:]\s*(\S+)", line, re.I
            )
            # A *_file key names where the secret is; a *_url key an endpoint.
            if setting and not setting[1].lower().endswith(("_file", "_url")):
                value = setting[2]
                assert value.startswith(("$__file{", "/run/secrets/")), f"{where}: {line}"
    settings = ini()
    assert re.search(r"^\[auth\.anonymous\]\nenabled = false$", settings, re.MULTILINE)
    for line in ("allow_sign_up = false", "viewers_can_edit = false"):
        assert re.search(rf"^{line}$", settings, re.MULTILINE), line
    assert "GF_" not in (ROOT / "docker-compose.yml").read_text()  # settings live in grafana.ini


def test_secrets_script_creates_every_secret(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts/compose-secrets.sh", tmp_path / "scripts")
    for _ in range(2):  # a second run keeps what exists
        subprocess.run(["bash", str(tmp_path / "scripts/compose-secrets.sh")], check=True)
    secrets = tmp_path / "secrets"
    assert secrets.stat().st_mode & 0o777 == 0o700
    created = {path.name: path.read_text() for path in secrets.iterdir()}
    assert set(created) == set(COMPOSE["secrets"])
    assert all(len(value) >= 32 for value in created.values())
    password = created["postgres_password"]
    assert created["recmon_dsn"] == f"postgresql+psycopg://recmon:{password}@postgres:5432/recmon"
    # A config that reads the DSN the script wrote loads.
    config = (ROOT / "examples/compose.yml").read_text()
    (tmp_path / "recmon.yml").write_text(config.replace("/run/secrets/", f"{secrets}/"))
    source = load_config(tmp_path / "recmon.yml").sources["demo"]
    assert source.dsn.get_secret_value() == created["recmon_dsn"]
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "secrets/recmon_dsn"], cwd=ROOT, check=False
    )
    assert ignored.returncode == 0, "secrets/ must be ignored by git"


def test_only_grafana_publishes_a_port() -> None:
    published = {name for name, service in SERVICES.items() if "ports" in service}
    assert published == {"grafana"}
    assert SERVICES["grafana"]["ports"] == ["127.0.0.1:3000:3000"]


def test_every_service_is_healthchecked_or_a_completed_dependency() -> None:
    for name, service in SERVICES.items():
        for dependency, condition in service.get("depends_on", {}).items():
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dependency], dependency
        if name == "seed":
            assert SERVICES["recmon"]["depends_on"]["seed"] == {
                "condition": "service_completed_successfully"
            }
            assert "healthcheck" not in service
        else:
            assert service["healthcheck"]["test"][0] == "CMD", name


def flags_of(help_text: str) -> set[str]:
    return set(re.findall(r"^\s+(?:-\w, )?--(?:\[no-\])?([\w.-]+)", help_text, re.MULTILINE))


def used_flags(command: list[str]) -> set[str]:
    return {word[2:].split("=", 1)[0] for word in command if word.startswith("--")}


def major(version: str) -> str:
    return version.lstrip("v").split(".", 1)[0]


@pytest.mark.parametrize(
    ("service", "names"),
    [
        ("prometheus", ("prometheus",)),
        ("alertmanager", ("alertmanager", "prometheus-alertmanager")),
    ],
)
def test_server_flags_exist_in_the_pinned_major_version(
    service: str, names: tuple[str, ...]
) -> None:
    """The installed Debian binary's --help stands in for the pinned image's: valid when both
    are of the same major version, which the test asserts first."""
    program = binary(*names)
    installed = subprocess.run([program, "--version"], capture_output=True, text=True, check=True)
    version = re.search(r"version (\S+)", installed.stdout + installed.stderr)[1]
    pinned = SERVICES[service]["image"].rsplit(":", 1)[1]
    assert major(version) == major(pinned), f"{service}: installed {version}, pinned {pinned}"
    help_text = subprocess.run([program, "--help"], capture_output=True, text=True, check=True)
    known = flags_of(help_text.stdout + help_text.stderr)
    command = SERVICES[service]["command"]
    assert used_flags(command) <= known, used_flags(command) - known


def test_recmon_commands_parse() -> None:
    """recmon's own argument parser accepts the compose commands and the image's default."""
    parser = _parser()
    serve = parser.parse_args(SERVICES["recmon"]["command"])
    assert serve.config_file == "/etc/recmon/recmon.yml"
    default = re.search(r"^CMD (.+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)[1]
    assert parser.parse_args(json.loads(default)).config_file == serve.config_file
    # The seed's shell runs `recmon simulate` with the DSN read from its secret.
    shell = SERVICES["seed"]["entrypoint"]
    assert shell[:2] == ["sh", "-c"]
    words = shlex.split(shell[2].replace("$$", "$"))
    seed = parser.parse_args(words[words.index("recmon") + 1 :])
    assert seed.out == "$(cat /run/secrets/recmon_dsn)"


def test_prometheus_runs_the_repository_config_with_compose_targets() -> None:
    command = SERVICES["prometheus"]["command"]
    assert "--storage.tsdb.retention.time=35d" in command
    result = subprocess.run(
        [binary("promtool"), "check", "config", str(ROOT / "prometheus/compose.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The same config as the local demo's but for the targets, so the two cannot drift apart.
    local = (ROOT / "prometheus/prometheus.yml").read_text()
    compose = yaml.safe_load((ROOT / "prometheus/compose.yml").read_text())
    for local_target, service in (("localhost:9747", "recmon"), ("localhost:9093", "alertmanager")):
        local = local.replace(local_target, f"{service}:{local_target.split(':')[1]}")
    assert yaml.safe_load(local) == compose
    assert compose["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "alertmanager:9093"
    ]
