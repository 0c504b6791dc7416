"""recmon's own cycle, as `recmon serve` runs it: one Cycle object kept across cycles.

    python benchmarks/cycles.py CONFIG

reads one evaluation time (ISO 8601) per line on stdin, runs a cycle at it and answers with one
JSON line: the cycle's seconds, the samples it produced and the process's peak RSS so far.
Keeping the Cycle between cycles is what lets an incremental engine carry state over.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from datetime import datetime

from recmon.config import load_config
from recmon.cycle import Cycle


def main(config_file: str) -> None:
    cycle = Cycle(load_config(config_file))
    try:
        for line in sys.stdin:
            now = datetime.fromisoformat(line.strip())
            started = time.perf_counter()
            samples = cycle.run(now)
            seconds = time.perf_counter() - started
            up = [s.value for s in samples if s.metric == "source_up"]
            answer = {
                "seconds": seconds,
                "samples": len(samples),
                "source_up": min(up, default=0.0),
                "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0,
            }
            print(json.dumps(answer), flush=True)
    finally:
        cycle.close()


if __name__ == "__main__":
    main(sys.argv[1])
