# The GigCo image: API (gunicorn), Celery worker, beat and Flower, and `gigco db upgrade`.
# docker-compose.yml chooses the process with `command:`; the default is the API.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, so that a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir gigco && touch gigco/__init__.py celeryconfig.py \
    && pip install ".[tracing]" \
    && pip uninstall -y gigco \
    && rm -rf gigco celeryconfig.py build *.egg-info

# Run the installed package, not the sources: proves its package data (migrations) is whole.
COPY celeryconfig.py ./
COPY gigco ./gigco
RUN pip install --no-deps . \
    && rm -rf gigco celeryconfig.py build *.egg-info \
    && useradd --create-home --uid 10001 gigco

# Never root. Flower reads gigco/tasks/flowerconfig.py from the installed package.
USER gigco
EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "4", "gigco.web:create_app()"]
