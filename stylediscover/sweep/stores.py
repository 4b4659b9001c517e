"""One writer at a time while a store shared by several sweeps is set up.

Two sweeps started at once on one MLflow or Optuna database both find it empty and both create its tables (or the
same experiment): one of them fails ("duplicate column", "table ... already exists") and loses its trials.
`exclusive(url)` serialises that first contact: a file lock beside a SQLite file, a PostgreSQL advisory lock on
the server (held on its own connection), nothing for other URLs (an MLflow server migrates its own database; a
concurrent create_experiment is handled by the caller).
"""

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_TIMEOUT_S = 120.0  # a store's migrations take seconds; a lock held longer belongs to a stuck process


@contextmanager
def exclusive(url: str) -> Iterator[None]:
    """Holds a lock named after the database `url` points to (sqlite, postgresql); a no-op for other URLs."""
    scheme = url.split(":", 1)[0].split("+")[0]
    if scheme == "sqlite":
        from filelock import FileLock
        from sqlalchemy import make_url

        database = Path(make_url(url).database or "").resolve()
        database.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{database}.lock", timeout=LOCK_TIMEOUT_S):
            yield
    elif scheme == "postgresql":
        from sqlalchemy import create_engine, text

        key = int.from_bytes(hashlib.sha256(b"stylediscover-store-setup").digest()[:8], "big", signed=True)
        engine = create_engine(url, pool_size=1, connect_args={"connect_timeout": 10})
        try:
            with engine.connect() as connection:
                connection.execute(text(f"SET lock_timeout = {int(LOCK_TIMEOUT_S * 1000)}"))
                connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
                try:
                    yield
                finally:
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
        finally:
            engine.dispose()
    else:
        yield
