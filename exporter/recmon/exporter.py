"""`recmon serve`: the scheduler computes snapshots, the web server serves the latest one."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from prometheus_client import CollectorRegistry

from recmon.collector import SnapshotCollector, families
from recmon.config import Config
from recmon.cycle import Cycle
from recmon.scheduler import Scheduler
from recmon.sources.engine import redact
from recmon.web.app import make_app, serve

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

    def run_cycle(self) -> None:
        self.collector.publish(families(self.cycle.run()))
        self.ready.set()

    def serve(self, listen_address: str) -> None:
        sources = {
            name: redact(source.dsn.get_secret_value())
            for name, source in self.config.sources.items()
        }
        server = serve(make_app(self.registry, self.ready.is_set, sources), listen_address)

        def shutdown(signum: int, _frame: FrameType | None) -> None:
            log.info("shutting down", extra={"signal": signal.Signals(signum).name})
            threading.Thread(target=server.shutdown, daemon=True).start()

        signal.signal(signal.SIGTERM, shutdown)
        signal.signal(signal.SIGINT, shutdown)
        self.scheduler.start()
        log.info("listening", extra={"address": listen_address, "sources": ",".join(sources)})
        try:
            server.serve_forever()
        finally:
            server.server_close()
            self.scheduler.stop(timeout=self.config.query_timeout.total_seconds())
            self.cycle.close()
