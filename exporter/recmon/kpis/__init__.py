"""Pure KPI functions: frames and arrays in, values out. No SQL and no Prometheus here."""
