"""The config file: typed schema and loader."""

from recmon.config.errors import ConfigError
from recmon.config.load import load_config, parse_config
from recmon.config.schema import ROLES, Config, Role, Source, Window

__all__ = [
    "ROLES",
    "Config",
    "ConfigError",
    "Role",
    "Source",
    "Window",
    "load_config",
    "parse_config",
]
