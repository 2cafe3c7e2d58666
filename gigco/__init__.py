"""GigCo: a gig marketplace whose job lifecycle runs on Flask, PostgreSQL and Celery."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gigco")  # pyproject.toml's, as installed
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
