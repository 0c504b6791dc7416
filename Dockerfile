# The recmon exporter image (docker-compose.yml builds it for the `recmon` and `seed` services):
# the package with the PostgreSQL driver, run as an unprivileged user.
FROM python:3.11.9-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only what the package needs (.dockerignore keeps everything else, secrets/ included, out).
COPY pyproject.toml README.md /src/
COPY exporter /src/exporter
RUN pip install "/src[postgres]" \
    && rm -rf /src \
    && useradd --system --uid 10001 --user-group --no-create-home recmon

USER recmon
WORKDIR /tmp
EXPOSE 9747
ENTRYPOINT ["recmon"]
CMD ["serve", "--config.file", "/etc/recmon/recmon.yml"]
