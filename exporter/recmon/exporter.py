"""`recmon serve`: the scheduler computes snapshots, the web server serves the latest one."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry

from recmon.collector import SnapshotCollector, families
from recmon.config import Config
from recmon.cycle import Cycle
from recmon.scheduler import Scheduler
from recmon.sources.engine import redact
from recmon.web.app import make_app, serve
from recmon.web.webconfig import WebConfigWatcher

log = logging.getLogger("recmon")


class Exporter:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.cycle = Cycle(config)
        self.collector = SnapshotCollector()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)
        self.ready = threading.Event()
        self.scheduler = Scheduler(config.interval.total_seconds(), self.run_cycle)
        self._server: WSGIServer | None = None

    def run_cycle(self) -> None:
        self.collector.publish(families(self.cycle.run(), self.config))
        self.ready.set()

    def serve(self, listen_address: str, web_config_file: str | None = None) -> None:
        sources = {
            name: redact(source.dsn.get_secret_value())
            for name, source in self.config.sources.items()
        }
        watcher = WebConfigWatcher(web_config_file) if web_config_file else None
        server = self._server = serve(
            make_app(self.registry, self.ready.is_set, sources), listen_address, watcher
        )
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        self.scheduler.start()
        log.info("listening", extra={"address": listen_address, "sources": ",".join(sources)})
        try:
            server.serve_forever()
        finally:
            server.server_close()
            self.scheduler.stop(timeout=self.config.query_timeout.total_seconds())
            self.cycle.close()

    def stop(self) -> None:
        """Stop serving; serve() returns once the running cycle is done (or timed out)."""
        # shutdown() waits for serve_forever() to return, so it cannot run on that thread.
        if self._server is not None:
            threading.Thread(target=self._server.shutdown, daemon=True).start()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("shutting down", extra={"signal": signal.Signals(signum).name})
        self.stop()
