"""The results cache of registry audits: one row per unit (one check on one model), keyed by content.

The key (:func:`unit_key`) is the SHA-256 of: the SHA-256 of every model file and data file, the check's
name and options (policy options and ``--option`` overrides), the policy thresholds, the seed, ``quick``,
``trust`` and the modelshield version. Anything else changing (a limit, ``fail_on``) re-evaluates the gate
from the cached results without re-running them. The store is SQLAlchemy, as the gateway's audit log:
a SQLite file by default, PostgreSQL by URL (``postgresql://user@host/db``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from modelshield.errors import DataError, MissingExtraError, UserError

__all__ = ["CACHE_TABLE", "ResultCache", "cache_url"]

CACHE_TABLE = "modelshield_scale_cache"
#: What to do about a cache that cannot be read, on the command line (its error's ``cli_hint``).
CORRUPT_HINT = "or re-run with --no-cache"


def cache_url(value: str | Path) -> str:
    """A SQLAlchemy URL for ``value``: a URL as given (``postgresql://`` uses psycopg 3), else a SQLite file."""
    text = str(value)
    if text.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + text.split("://", 1)[1]
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


class ResultCache:
    """Get and put unit outcomes (JSON) by key. A database that cannot be opened or read is one
    :class:`~modelshield.errors.DataError` line (exit 2); its ``cli_hint`` suggests ``--no-cache``."""

    def __init__(self, url: str | Path) -> None:
        try:
            import sqlalchemy as sa  # optional extra (serve/scale): only when the cache is used
        except ImportError as exc:  # pragma: no cover
            missing = MissingExtraError("sqlalchemy", "scale", "the results cache")
            missing.cli_hint = "or pass --no-cache"
            raise missing from exc
        self._sa = sa
        self.url = cache_url(url)
        if self.url.startswith("sqlite:///"):
            path = Path(self.url[len("sqlite:///"):])
            if not path.parent.is_dir():
                raise UserError(f"cache folder {path.parent} does not exist")
        try:
            self.engine = sa.create_engine(self.url, pool_pre_ping=True)
        except ImportError as exc:
            raise MissingExtraError("psycopg", "scale", "a PostgreSQL cache") from exc
        except sa.exc.ArgumentError as exc:
            raise UserError(f"bad cache URL {self.safe_url}: {exc}") from None
        self.metadata = sa.MetaData()
        self.table = sa.Table(
            CACHE_TABLE, self.metadata,
            sa.Column("key", sa.String(64), primary_key=True),
            sa.Column("check_name", sa.String(80), nullable=False),
            sa.Column("model", sa.Text, nullable=False),
            sa.Column("version", sa.String(40), nullable=False),
            sa.Column("created", sa.Float, nullable=False),
            sa.Column("outcome", sa.Text, nullable=False),
        )
        self._guard(lambda: (self.metadata.create_all(self.engine), self._probe()))

    @property
    def safe_url(self) -> str:
        try:
            return self._sa.engine.make_url(self.url).render_as_string(hide_password=True)
        except Exception:
            return "<cache url>"

    def _probe(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(self._sa.select(self._sa.func.count()).select_from(self.table)).scalar()

    def _guard(self, fn: Any) -> Any:
        try:
            return fn()
        except self._sa.exc.SQLAlchemyError as exc:
            orig = getattr(exc, "orig", None) or exc
            first = (str(orig).splitlines() or [type(orig).__name__])[0]
            raise DataError(f"the results cache {self.safe_url} cannot be used ({type(orig).__name__}: {first}): "
                            "it is corrupt or not a modelshield cache; delete it", cli_hint=CORRUPT_HINT) from None

    def get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """The cached outcome (JSON) of each of ``keys`` present; a row that does not parse is a miss."""
        found: dict[str, dict[str, Any]] = {}
        t = self.table

        def read() -> None:
            with self.engine.connect() as conn:
                for i in range(0, len(keys), 500):
                    rows = conn.execute(self._sa.select(t.c.key, t.c.outcome).where(t.c.key.in_(keys[i:i + 500])))
                    for k, text in rows:
                        try:
                            doc = json.loads(text)
                        except ValueError:
                            continue
                        if isinstance(doc, dict) and isinstance(doc.get("result"), dict):
                            found[k] = doc

        self._guard(read)
        return found

    def put(self, key: str, *, check: str, model: str, version: str, outcome: dict[str, Any]) -> None:
        t = self.table
        row = {"key": key, "check_name": check, "model": model, "version": version, "created": time.time(),
               "outcome": json.dumps(outcome, sort_keys=True, default=str)}

        def write() -> None:
            with self.engine.begin() as conn:
                conn.execute(t.delete().where(t.c.key == key))
                conn.execute(t.insert().values(**row))

        self._guard(write)

    def __len__(self) -> int:
        def count() -> int:
            with self.engine.connect() as conn:
                return int(conn.execute(self._sa.select(self._sa.func.count()).select_from(self.table)).scalar())

        return self._guard(count)

    def close(self) -> None:
        self.engine.dispose()
