# Hookline's image: one image, two roles (`hookline api`, the default, and `hookline worker`).
#   docker build -t hookline .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The packages listed under [tool.setuptools] in pyproject.toml, and what the build reads.
COPY pyproject.toml README.md /src/
COPY hookline /src/hookline
COPY api /src/api
COPY workflows /src/workflows
COPY activities /src/activities
RUN pip install /src && rm -rf /src

RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/hookline --create-home hookline
USER hookline
WORKDIR /var/lib/hookline

# Only used without HOOKLINE_DATABASE_URL (a SQLite registry in the data directory).
ENV HOOKLINE_DATA_DIR=/var/lib/hookline \
    HOOKLINE_API_HOST=0.0.0.0
EXPOSE 8000
CMD ["hookline", "api"]
