"""Bulk rows for benchmarks: jobs in a chosen state with a chosen deadline, written by COPY."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable

import psycopg2

from gigco import db_wait
from gigco.db import normalize_url

JOB_COLUMNS = (
    "consumer_id",
    "worker_id",
    "category_id",
    "title",
    "lat",
    "lng",
    "scheduled_start",
    "scheduled_end",
    "estimated_hours",
    "status",
    "subtotal_cents",
    "fee_cents",
    "price_cents",
    "currency",
    "offer_expires_at",
    "review_deadline",
    "match_round",
    "payment_attempts",
    "timer_at",
    "step_due_at",
    "event_seq",
    "created_at",
    "updated_at",
)


def dsn(url: str) -> str:
    """A psycopg2 DSN from a SQLAlchemy URL."""
    return normalize_url(url).replace("postgresql+psycopg2://", "postgresql://")


def job_row(
    *,
    consumer_id: int,
    status: str,
    worker_id: int | None = None,
    category_id: int = 2,
    offer_expires_at: dt.datetime | None = None,
    review_deadline: dt.datetime | None = None,
    timer_at: dt.datetime | None = None,
    step_due_at: dt.datetime | None = None,
    match_round: int = 0,
    now: dt.datetime,
) -> tuple[object, ...]:
    """One jobs row (priced at 2 h of plumbing) as a tuple in JOB_COLUMNS order."""
    start = now + dt.timedelta(days=30)
    return (
        consumer_id,
        worker_id,
        category_id,
        "bench",
        52.52,
        13.4,
        start,
        start + dt.timedelta(hours=2),
        2.0,
        status,
        18000,
        1800,
        19800,
        "USD",
        offer_expires_at,
        review_deadline,
        match_round,
        0,
        timer_at,
        step_due_at,
        0,
        now,
        now,
    )


def copy_rows(
    url: str,
    table: str,
    columns: Iterable[str],
    rows: Iterable[tuple[object, ...]],
    returning_ids: bool = False,
) -> list[int]:
    """COPY ``rows`` into ``table``; returns the new ids when asked (by id range)."""
    columns = list(columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow(
            ["\\N" if v is None else json.dumps(v) if isinstance(v, dict) else v for v in row]
        )
    buffer.seek(0)
    with psycopg2.connect(dsn(url)) as conn, conn.cursor() as cur:
        before = 0
        if returning_ids:
            cur.execute(f"SELECT coalesce(max(id), 0) FROM {table}")
            before = cur.fetchone()[0]
        with db_wait.suspended():
            cur.copy_expert(
                f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')",
                buffer,
            )
        if returning_ids:
            cur.execute(f"SELECT id FROM {table} WHERE id > %s ORDER BY id", (before,))
            return [r[0] for r in cur.fetchall()]
    return []


def one_consumer_and_worker(url: str) -> tuple[int, int]:
    """A consumer and a plumbing worker for bench rows."""
    with psycopg2.connect(dsn(url)) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO consumers (name, email, payment_method, rating_sum, "
            "rating_count, completed_jobs, created_at) VALUES ('Bench', "
            "'bench-' || clock_timestamp() || '@b.io', 'pm_card_visa', 0, 0, 0, now()) "
            "RETURNING id"
        )
        consumer = cur.fetchone()[0]
        cur.execute(
            "INSERT INTO workers (name, email, lat, lng, service_radius_km, available, "
            "rating_sum, rating_count, completed_jobs, created_at, updated_at) VALUES "
            "('Bench', 'bw-' || clock_timestamp() || '@b.io', 52.52, 13.4, 50, true, "
            "0, 0, 0, now(), now()) RETURNING id"
        )
        worker = cur.fetchone()[0]
        cur.execute(
            "INSERT INTO worker_skills (worker_id, category_id) SELECT %s, id FROM categories",
            (worker,),
        )
    return consumer, worker


def analyze(url: str) -> None:
    """VACUUM ANALYZE the whole database (outside a transaction)."""
    conn = psycopg2.connect(dsn(url))
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
    finally:
        conn.close()
