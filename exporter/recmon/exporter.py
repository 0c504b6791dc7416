"""`recmon serve`: the scheduler computes snapshots, the web server serves the latest one.

SIGHUP or POST /-/reload rereads the config file. A config that does not load is rejected with
one log line and the running one goes on; one that loads takes over at the next cycle.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry

from recmon.collector import Exposition, SnapshotCollector, families
from recmon.config import Config, ConfigError, load_config
from recmon.cycle import Cycle
from recmon.scheduler import Scheduler
from recmon.sources.engine import redact
from recmon.web.app import make_app, serve
from recmon.web.webconfig import WebConfigWatcher

log = logging.getLogger("recmon")


class Exporter:
    def __init__(self, config: Config, config_file: str | Path | None = None) -> None:
        self.config = config
        self.config_file = config_file  # what a reload rereads
        self.cycle = Cycle(config)
        self.collector = SnapshotCollector()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)
        self.exposition = Exposition()
        self.ready = threading.Event()
        self.scheduler = Scheduler(config.interval.total_seconds(), self.run_cycle)
        self._server: WSGIServer | None = None
        self._lock = threading.Lock()
        self._next: Cycle | None = None  # a reloaded config's cycle, waiting for the next turn

    def run_cycle(self) -> None:
        with self._lock:
            reloaded, self._next = self._next, None
        if reloaded is not None:  # switched between cycles, never during one
            reloaded.carry_over(self.cycle)
            self.cycle.close()
            self.cycle, self.config = reloaded, reloaded.config
            self.scheduler.interval = self.config.interval.total_seconds()
        self.collector.publish(families(self.cycle.run(), self.config))
        self.exposition = Exposition.render(self.registry)  # one reference swap, as publish
        self.ready.set()

    def reload(self) -> str | None:
        """Reread the config file for the next cycle; return why it was rejected, or None."""
        if self.config_file is None:
            return "recmon was started without a config file"
        try:
            cycle = Cycle(load_config(self.config_file))
        except ConfigError as exc:
            problem = "; ".join(str(exc).splitlines())
            log.error("config reload failed; keeping the running config", extra={"error": problem})
            return problem
        with self._lock:
            replaced, self._next = self._next, cycle
        if replaced is not None:
            replaced.close()
        log.info(
            "config reloaded; it applies from the next cycle",
            extra={"file": str(self.config_file), "sources": ",".join(cycle.config.sources)},
        )
        return None

    def sources(self) -> dict[str, str]:
        """Each source's name and redacted DSN, for the landing page."""
        return {
            name: redact(source.dsn.get_secret_value())
            for name, source in self.config.sources.items()
        }

    def serve(self, listen_address: str, web_config_file: str | None = None) -> None:
        watcher = WebConfigWatcher(web_config_file) if web_config_file else None
        app = make_app(lambda: self.exposition, self.ready.is_set, self.sources, self.reload)
        server = self._server = serve(app, listen_address, watcher)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
            signal.signal(signal.SIGHUP, self._on_signal)
        self.scheduler.start()
        log.info(
            "listening", extra={"address": listen_address, "sources": ",".join(self.sources())}
        )
        try:
            server.serve_forever()
        finally:
            server.server_close()
            self.scheduler.stop(timeout=self.config.query_timeout.total_seconds())
            self.cycle.close()
            if self._next is not None:
                self._next.close()

    def stop(self) -> None:
        """Stop serving; serve() returns once the running cycle is done (or timed out)."""
        # shutdown() waits for serve_forever() to return, so it cannot run on that thread.
        if self._server is not None:
            threading.Thread(target=self._server.shutdown, daemon=True).start()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            # Off the signal handler: loading the config takes locks the interrupted code may hold.
            threading.Thread(target=self.reload, name="recmon-reload", daemon=True).start()
            return
        log.info("shutting down", extra={"signal": signal.Signals(signum).name})
        self.stop()
