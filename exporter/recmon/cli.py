"""The `recmon` command: serve, once, check-config, simulate, backfill, backtest, report."""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from recmon import __version__, logs
from recmon.backfill import BackfillError, ProgressBar, backfill, backfill_rules
from recmon.collector import SnapshotCollector, families
from recmon.config import ConfigError, load_config
from recmon.cycle import Cycle, describe
from recmon.durations import parse_duration
from recmon.simulate.scenarios import SCENARIOS
from recmon.sources.check import inspect_schema
from recmon.sources.engine import SourceError, open_engine, redact


class UsageError(Exception):
    """A problem the user can fix; printed as one line, no traceback."""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.setup(args.log_level, args.log_format)
    try:
        return int(args.command(args))
    except (BackfillError, ConfigError, SourceError, UsageError) as exc:
        for line in str(exc).splitlines():
            print(f"recmon: {logs.redact_text(line)}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recmon", description=__doc__)
    parser.add_argument("--version", action="version", version=f"recmon {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, func: object, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(command=func)
        sub.add_argument(
            "--log.level",
            dest="log_level",
            default="info",
            choices=["debug", "info", "warning", "error"],
        )
        sub.add_argument(
            "--log.format", dest="log_format", default="logfmt", choices=["logfmt", "json"]
        )
        return sub

    def with_config(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument("--config.file", dest="config_file", required=True, metavar="FILE")
        return sub

    serve = with_config(command("serve", _serve, "Compute KPIs on a schedule and serve /metrics."))
    serve.add_argument("--web.listen-address", dest="listen_address", default=":9747")
    serve.add_argument(
        "--web.config.file",
        dest="web_config_file",
        metavar="FILE",
        help="TLS and basic auth, in the Prometheus exporter-toolkit format",
    )

    once = with_config(command("once", _once, "Compute one cycle and print the exposition."))
    once.add_argument("--now", type=_timestamp, help="evaluation time, ISO 8601 (default: now)")

    with_config(
        command(
            "check-config",
            _check_config,
            "Validate the config and each source's tables and columns.",
        )
    )

    history = with_config(
        command(
            "backfill",
            _backfill,
            "Compute the KPIs at every step of a past period and write Prometheus TSDB blocks.",
        )
    )
    history.add_argument("--from", dest="start", type=_timestamp, required=True, metavar="T1")
    history.add_argument("--to", dest="end", type=_timestamp, required=True, metavar="T2")
    history.add_argument("--step", type=_duration, default=parse_duration("5m"))
    history.add_argument("--out", type=Path, required=True, help="the blocks' directory")
    history.add_argument(
        "--rule-file",
        dest="rule_files",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="also backfill these recording rules (repeatable), e.g. the baselines",
    )

    report = command(
        "report",
        _report,
        "Write an HTML trend report of a past period, from the database or from a Prometheus.",
    )
    origin = report.add_mutually_exclusive_group(required=True)
    origin.add_argument(
        "--config.file", dest="config_file", metavar="FILE", help="compute from the database"
    )
    origin.add_argument("--prometheus", metavar="URL", help="read from this Prometheus")
    report.add_argument("--from", dest="start", type=_timestamp, required=True, metavar="T1")
    report.add_argument("--to", dest="end", type=_timestamp, required=True, metavar="T2")
    report.add_argument(
        "--step",
        type=_duration,
        default=parse_duration("1h"),
        help="time between points (default 1h: a 30-day report is 720 cycles)",
    )
    report.add_argument("--window", help="the KPI window shown (default: the largest)")
    report.add_argument("--out", type=Path, required=True, help="directory for report.html")

    simulate = command("simulate", _simulate, "Write a synthetic recommender's data.")
    simulate.add_argument(
        "--out", required=True, help="SQLite file, or any SQLAlchemy URL (tables are replaced)"
    )
    simulate.add_argument("--days", type=int, default=14)
    simulate.add_argument("--seed", type=int, default=42)
    simulate.add_argument("--end", type=_timestamp, help="end of the data, ISO 8601 (default: now)")
    simulate.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="NAME",
        help="incident scenario to add (repeatable; they compose); one of those below",
    )
    simulate.formatter_class = argparse.RawDescriptionHelpFormatter
    simulate.epilog = "scenarios:\n" + "\n".join(
        textwrap.fill(
            s.description, 79, initial_indent=f"  {s.name:<16}", subsequent_indent=" " * 18
        )
        for s in SCENARIOS.values()
    )

    test = command(
        "backtest",
        _backtest,
        "Evaluate the alert rules over simulated history with each scenario's incident.",
    )
    test.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="NAME",
        help="scenario to backtest (repeatable), or all (default)",
    )
    test.add_argument("--json", action="store_true", help="machine-readable output")
    test.add_argument("--weeks", type=int, default=4, help="weeks of history behind the baselines")
    test.add_argument("--seed", type=int, default=42)
    test.add_argument("--end", type=_timestamp, help="end of the simulated data, ISO 8601")
    test.add_argument("--step", type=_duration, default=parse_duration("5m"))
    test.add_argument(
        "--coarse-step",
        type=_duration,
        default=parse_duration("30m"),
        help="step of the baselines' history and of the slow part of an incident",
    )
    test.add_argument(
        "--clean", type=_duration, default=parse_duration("7d"), help="span of `none` evaluated"
    )
    test.add_argument(
        "--horizon",
        type=_duration,
        default=parse_duration("3d12h"),
        help="evaluate at most this long after an incident's start",
    )
    test.add_argument(
        "--requests-per-hour", type=float, default=None, help="size of the simulated traffic"
    )
    test.add_argument(
        "--settings",
        type=Path,
        metavar="FILE",
        action="append",
        default=[],
        help="rule generator settings to backtest (YAML); repeat to layer files, later ones win",
    )
    test.add_argument(
        "--workdir",
        type=Path,
        metavar="DIR",
        help="keep the work files here, and reuse them (with the same recmon version)",
    )
    test.add_argument("--jobs", type=int, default=1, help="processes simulating and backfilling")
    return parser


def _timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _serve(args: argparse.Namespace) -> int:
    from recmon.exporter import Exporter

    exporter = Exporter(load_config(args.config_file), args.config_file)
    exporter.serve(args.listen_address, args.web_config_file)
    return 0


def _once(args: argparse.Namespace) -> int:
    cycle = Cycle(load_config(args.config_file))
    try:
        collector = SnapshotCollector()
        collector.publish(families(cycle.run(args.now), cycle.config))
    finally:
        cycle.close()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    sys.stdout.write(generate_latest(registry).decode())
    failed = [name for name, health in cycle.health.items() if health.problem]
    return 1 if failed else 0


def _check_config(args: argparse.Namespace) -> int:
    config = load_config(args.config_file)
    problems = []
    for name, source in config.sources.items():
        engine = open_engine(source, config.query_timeout)
        try:
            problems.extend(inspect_schema(engine, name, source, config.dimensions).problems)
        except (SQLAlchemyError, OSError) as exc:
            problems.append((("sources", name), f"cannot connect: {describe(exc)}"))
        finally:
            engine.dispose()
    if problems:
        raise config.error(problems)
    for name, source in config.sources.items():
        print(f"sources.{name}: {redact(source.dsn.get_secret_value())}: ok")
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from recmon.simulate import simulate

    url = args.out if "://" in args.out else f"sqlite:///{Path(args.out).resolve()}"
    try:
        summary = simulate(
            url, days=args.days, seed=args.seed, end=args.end, scenarios=args.scenario
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    logging.getLogger("recmon.simulate").info(
        "demo data written",
        extra={"out": redact(url), **{f"rows_{k}": v for k, v in summary.rows.items()}},
    )
    return 0


def _report(args: argparse.Namespace) -> int:
    from recmon.report import ReportError, write_report
    from recmon.report.database import DatabaseLoader
    from recmon.report.prometheus import PrometheusLoader

    def progress(done: int, total: int) -> None:
        sys.stderr.write(f"\rreport: {done}/{total} cycles" + ("\n" if done == total else ""))

    loader: DatabaseLoader | PrometheusLoader
    try:
        if args.prometheus:
            loader = PrometheusLoader(args.prometheus, args.window)
        else:
            loader = DatabaseLoader(load_config(args.config_file), args.window, progress)
        try:
            path = write_report(loader, args.start, args.end, args.step, args.out)
        finally:
            loader.close()
    except ReportError as exc:
        raise UsageError(str(exc)) from None
    logging.getLogger("recmon.report").info("report written", extra={"out": str(path)})
    return 0


def _backfill(args: argparse.Namespace) -> int:
    if args.end < args.start:
        raise UsageError("--to is before --from")
    progress = ProgressBar()
    config = load_config(args.config_file)
    written = backfill(config, args.start, args.end, args.step, args.out, progress)
    if args.rule_files:
        written += backfill_rules(
            args.out, args.rule_files, args.start, args.end, args.step, progress
        )
    logging.getLogger("recmon.backfill").info(
        "blocks written", extra={"out": str(args.out), "samples": written}
    )
    return 0


def _backtest(args: argparse.Namespace) -> int:
    from recmon import backtest
    from recmon.generate.rules import load_settings
    from recmon.simulate.world import REQUESTS_PER_HOUR

    names = args.scenario or ["all"]
    scenarios = list(SCENARIOS) if "all" in names else names
    try:
        settings = load_settings(*args.settings)
        options = backtest.Options(
            scenarios=tuple(dict.fromkeys(scenarios)),
            end=args.end or backtest.DEFAULT_END,
            seed=args.seed,
            weeks=args.weeks,
            step=args.step,
            coarse_step=args.coarse_step,
            clean=args.clean,
            horizon=args.horizon,
            requests_per_hour=args.requests_per_hour or REQUESTS_PER_HOUR,
            settings=settings,
            workdir=args.workdir,
            jobs=args.jobs,
        )
        result = backtest.run(options, lambda line: print(line, file=sys.stderr, flush=True))
    except (OSError, TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    reports = backtest.analyse(result)
    out = backtest.to_json(result, reports) if args.json else backtest.table(result, reports)
    sys.stdout.write(out if out.endswith("\n") else out + "\n")
    return 0
