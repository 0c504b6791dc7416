"""recmon: recommendation KPIs as Prometheus gauges."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("recmon")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
