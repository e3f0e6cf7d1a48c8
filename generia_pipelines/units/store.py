"""The unit store: one row per unit of work, its progress, and its paid-for image bytes.

The platform cannot list what the pipeline created and does not deduplicate, and images
cost money. So every unit of work has a deterministic key (:mod:`.keys`) and a row here that
records its progress as it happens: text generated, image paid for, media uploaded and
confirmed, remote object created. A materialization reads the rows and does only what is
missing; a retry, a crash or a backfill resumes where the last one stopped.

- SQLAlchemy Core on a sync engine: SQLite by default (a file under ``DAGSTER_HOME``),
  PostgreSQL (``postgresql+psycopg2://``) with the same statements. Every method is one
  short transaction; none keeps a transaction open between calls.
- Rows are created with ``INSERT ... ON CONFLICT DO NOTHING`` on the unit key, then
  read-modify-written under a row lock (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite
  transactions start with ``BEGIN IMMEDIATE``). The first result wins: a second text,
  image, media or remote id for a finished stage is not stored over the first (a second
  remote id is kept as an orphan and reported by ``duplicates()``).
- SQLite runs with a rollback journal, not WAL: WAL maps its ``-shm`` file into memory,
  and a file that fails under the mapping kills the process with SIGBUS (reproduced by
  truncating it) instead of raising an error that names the ledger. Commits are not
  fsynced: a crashed process loses nothing; a power loss may lose the last commits or
  leave a file SQLite refuses to open, which stops every paid call (never a second one).
  Production ledgers belong in PostgreSQL.
- Image bytes live in their own table, written in the transaction that records the image,
  and are dropped once the platform confirmed the upload.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine, make_url

from generia_pipelines.errors import ConfigError
from generia_pipelines.units.keys import (
    AVATARS,
    BRIEFS,
    CHARACTERS,
    POSTS,
    UnitKey,
    parse_unit_key,
)
from generia_pipelines.units.model import (
    LedgerError,
    Stage,
    StoredImage,
    Unit,
    json_object,
    now_utc,
    row_to_unit,
    sniff_content_type,
    unit_sort_key,
    variant_dict,
)
from generia_pipelines.units.tables import (
    UNIT,
    UNIT_LOCKED,
    images_table,
    metadata,
    units_table,
)

LEDGER_URL_VARIABLE = "GENERIA_LEDGER_URL"
LEDGER_FILE = "generia_ledger.sqlite"
ERROR_MAX = 2000
_SCHEMA_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_SECRET_QUERY_KEYS = ("password", "secret", "token", "key")


class LedgerUnwritable(LedgerError):
    """The ledger could not be read or written: nothing paid may start without it."""


def default_ledger_url(env: Mapping[str, str] | None = None) -> str:
    """``GENERIA_LEDGER_URL``, else a SQLite file in ``DAGSTER_HOME`` (or ``.dagster_home``)."""
    env = os.environ if env is None else env
    if env.get(LEDGER_URL_VARIABLE):
        return env[LEDGER_URL_VARIABLE]
    home = Path(env.get("DAGSTER_HOME") or ".dagster_home").absolute()
    return f"sqlite:///{home / LEDGER_FILE}"


def mask_url(url: str | URL) -> str:
    """The URL with its password (and secret-looking query values) replaced by ``***``."""
    try:
        parsed = make_url(url)
    except Exception:
        return "<unparseable database URL>"
    query = {
        name: ("***" if any(s in name.lower() for s in _SECRET_QUERY_KEYS) else value)
        for name, value in parsed.query.items()
    }
    return parsed.set(query=query).render_as_string(hide_password=True)


def _scrub(text: str, url: URL) -> str:
    return text.replace(url.password, "***") if url.password else text


def _normalise_url(url: URL) -> URL:
    """A bare ``postgresql://`` means psycopg 3 to SQLAlchemy 2.1; use psycopg2 if that is
    the driver installed (dagster-postgres brings it)."""
    if (
        url.drivername == "postgresql"
        and importlib.util.find_spec("psycopg") is None
        and importlib.util.find_spec("psycopg2") is not None
    ):
        return url.set(drivername="postgresql+psycopg2")
    return url


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    if database in ("", ":memory:") or "mode=memory" in str(url.query):
        raise ConfigError(
            f"{LEDGER_URL_VARIABLE}: an in-memory SQLite ledger forgets everything when the run "
            "ends, which defeats it; use a file (sqlite:////path/to/ledger.sqlite)"
        )
    if not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30.0, "check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own BEGIN is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # A rollback journal: WAL's memory-mapped -shm file turns a disk that fails under
        # it into SIGBUS; a journal file turns that into an error that names the ledger.
        cursor.execute("PRAGMA journal_mode=TRUNCATE")
        cursor.execute("PRAGMA mmap_size=0")
        # No fsync per commit (it costs 4 ms a commit here, 25x the rest): a killed process
        # loses nothing, only a power loss can lose the last commits, as with WAL before.
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Take the write lock up front: a read-then-write transaction cannot then fail with
        # SQLITE_BUSY halfway, and concurrent writers queue on the busy timeout instead.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class UnitStore:
    """The units and images of the ledger on one database (the connection, the tables)."""

    def __init__(
        self,
        url: str | URL | None = None,
        *,
        schema: str | None = None,
        keep_images: bool = False,
    ) -> None:
        """Open (and create if needed) the ledger at ``url`` (default: ``default_ledger_url``).

        ``schema`` puts the tables in a PostgreSQL schema (created if missing).
        ``keep_images`` keeps image bytes after the upload is confirmed (for debugging).
        """
        raw = default_ledger_url() if url is None else url
        try:
            parsed = _normalise_url(make_url(raw))
        except Exception:
            raise ConfigError(
                f"{LEDGER_URL_VARIABLE} is not a valid SQLAlchemy URL "
                "(e.g. postgresql+psycopg2://user:password@host/db or sqlite:////path/file)"
            ) from None
        self.url = parsed
        self.display_url = mask_url(parsed)
        self.keep_images = keep_images
        self.schema = schema
        if schema is not None and not _SCHEMA_RE.fullmatch(schema):
            raise ConfigError(f"ledger schema {schema!r} must match {_SCHEMA_RE.pattern}")
        try:
            if parsed.get_backend_name() == "sqlite":
                if schema is not None:
                    raise ConfigError("a ledger schema needs PostgreSQL; SQLite has none")
                engine = _sqlite_engine(parsed)
            else:
                # A blackholed host must fail the step, not hang it.
                psycopg = parsed.get_driver_name() in ("psycopg2", "psycopg")
                connect_args = {"connect_timeout": 10} if psycopg else {}
                engine = sa.create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
        except ConfigError:
            raise
        except Exception as exc:
            raise LedgerError(
                f"cannot open the ledger at {self.display_url}: "
                f"{_scrub(f'{type(exc).__name__}: {exc}', parsed)}"
            ) from None
        self._base_engine = engine
        self._engine: Engine = (
            engine.execution_options(schema_translate_map={None: schema}) if schema else engine
        )
        self._create_tables()

    def _create_tables(self) -> None:
        """Create the tables if missing; tolerate another process creating them concurrently."""
        for attempt in (1, 2):
            try:
                with self._engine.begin() as conn:
                    if self.schema:
                        conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                    metadata.create_all(conn, checkfirst=True)
                    self._add_missing_columns(conn)
                return
            except sa.exc.DBAPIError as exc:
                if attempt == 2 or exc.connection_invalidated or _is_connect_error(exc):
                    self._base_engine.dispose()
                    detail = _scrub(str(exc.orig).strip(), self.url)
                    raise LedgerError(
                        f"cannot open the ledger at {self.display_url}: {detail}"
                    ) from None

    def _add_missing_columns(self, conn: Connection) -> None:
        """Bring a ledger made by an earlier version up to date: add the nullable columns
        its tables lack (``create_all`` creates missing tables only). A missing column
        that cannot be added without a value stops here, naming it."""
        inspector = sa.inspect(conn)
        for table in metadata.sorted_tables:
            present = {c["name"] for c in inspector.get_columns(table.name, schema=self.schema)}
            for column in table.columns:
                if column.name in present:
                    continue
                if not column.nullable:
                    raise LedgerError(
                        f"the ledger at {self.display_url} was made by another version: table "
                        f"{table.name} lacks the column {column.name}, which needs a value"
                    )
                kind = column.type.compile(dialect=conn.dialect)
                target = f'"{self.schema}".{table.name}' if self.schema else table.name
                conn.exec_driver_sql(f"ALTER TABLE {target} ADD COLUMN {column.name} {kind}")

    def close(self) -> None:
        """Close the pooled connections."""
        self._base_engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({self.display_url!r})"

    # -- units -------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """One transaction; a database that cannot be read or written raises an error that
        names the ledger (path, or masked URL), so no paid call starts without its record."""
        try:
            with self._engine.begin() as conn:
                yield conn
        except sa.exc.DBAPIError as exc:
            if isinstance(exc, sa.exc.IntegrityError):
                raise
            detail = _scrub(str(exc.orig).strip() or type(exc.orig).__name__, self.url)
            raise LedgerUnwritable(
                f"the ledger at {self.display_url} cannot be used: {detail}; nothing paid "
                "starts until it can be written (check the file's permissions and disk, or "
                f"{LEDGER_URL_VARIABLE})"
            ) from None

    def _insert_ignore(self, conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        """INSERT ... ON CONFLICT DO NOTHING on the primary key, on either dialect."""
        if not rows:
            return
        dialect = conn.dialect.name
        if dialect == "sqlite":
            conn.execute(sqlite.insert(table).on_conflict_do_nothing(), rows)
        elif dialect == "postgresql":
            conn.execute(postgresql.insert(table).on_conflict_do_nothing(), rows)
        else:  # pragma: no cover - other dialects: one savepoint per row
            for row in rows:
                try:
                    with conn.begin_nested():
                        conn.execute(table.insert(), row)
                except sa.exc.IntegrityError:
                    pass

    def _new_rows(self, keys: Iterable[UnitKey]) -> list[dict[str, Any]]:
        now = now_utc()
        return [
            {
                "unit_key": str(key),
                "kind": key.kind,
                "world_id": key.world_id,
                "partition": key.partition,
                "slot": key.slot,
                "status": Stage.PLANNED.label,
                "cost_usd": 0.0,
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            }
            for key in keys
        ]

    def plan(self, keys: Iterable[str]) -> dict[str, Unit]:
        """Make sure a row exists for every key (new ones are ``planned``); return them all."""
        parsed = {key: parse_unit_key(key) for key in keys}
        if not parsed:
            return {}
        with self._transaction() as conn:
            self._insert_ignore(conn, units_table, self._new_rows(parsed.values()))
            rows = conn.execute(
                sa.select(units_table).where(units_table.c.unit_key.in_(list(parsed)))
            ).all()
        return {row.unit_key: row_to_unit(row) for row in rows}

    def get(self, key: str) -> Unit | None:
        with self._transaction() as conn:
            row = conn.execute(UNIT, {"key": key}).one_or_none()
        return None if row is None else row_to_unit(row)

    def units(self, world_id: str, kind: str, partition: str | None = None) -> list[Unit]:
        """A world's units of one kind (of one partition if given), in slot order."""
        query = sa.select(units_table).where(
            units_table.c.world_id == world_id, units_table.c.kind == kind
        )
        if partition is not None:
            query = query.where(units_table.c.partition == partition)
        with self._transaction() as conn:
            rows = conn.execute(query).all()
        return sorted((row_to_unit(row) for row in rows), key=unit_sort_key)

    def _mutate(
        self,
        key: str,
        change: Callable[[Unit, Connection], dict[str, Any]],
    ) -> Unit:
        """Create the unit if needed, lock it, apply ``change`` and return the new state.

        Three statements for a unit that exists (lock, update returning the row, commit):
        the ledger is written several times per item, so its statements are the pipeline's
        main CPU cost per item.
        """
        where = units_table.c.unit_key == key
        with self._transaction() as conn:
            row = conn.execute(UNIT_LOCKED, {"key": key}).one_or_none()
            if row is None:
                self._insert_ignore(conn, units_table, self._new_rows([parse_unit_key(key)]))
                row = conn.execute(UNIT_LOCKED, {"key": key}).one()
            current = row_to_unit(row)
            values = change(current, conn)
            if not values:
                return current
            values["updated_at"] = now_utc()
            updated = conn.execute(
                sa.update(units_table).where(where).values(**values).returning(units_table)
            ).one()
            return row_to_unit(updated)

    @staticmethod
    def _advance(unit: Unit, stage: Stage) -> str:
        return max(unit.status, stage).label

    def record_text(
        self,
        key: str,
        payload: Mapping[str, Any],
        *,
        character_id: str | None = None,
        settle: Callable[[Connection], float] | None = None,
    ) -> Unit:
        """Store the unit's generated text (and a post's author). First text wins: a unit
        that already has one keeps it, so two writers end up using the same text.
        ``settle`` runs in the same transaction (the text call's spend, as in ``record_image``)."""
        document = json_object(payload, "payload")

        def change(unit: Unit, conn: Connection) -> dict[str, Any]:
            if settle is not None:
                settle(conn)
            if unit.payload is not None:
                return {}
            return {
                "payload": document,
                "character_id": character_id or unit.character_id,
                "status": self._advance(unit, Stage.TEXT_DONE),
                "error": None,
            }

        return self._mutate(key, change)

    def reopen_text(self, key: str) -> Unit:
        """Forget the unit's text, so that the next writer generates it anew: the world it
        was written for has changed. Only for units whose text is their whole work (a
        brief); what was created on the platform from it stays."""

        def change(unit: Unit, _: Connection) -> dict[str, Any]:
            if unit.payload is None:
                return {}
            return {"payload": None, "status": Stage.PLANNED.label, "error": None}

        return self._mutate(key, change)

    def record_image(
        self,
        key: str,
        data: bytes,
        meta: Mapping[str, Any],
        cost_usd: float,
        *,
        settle: Callable[[Connection], float] | None = None,
    ) -> Unit:
        """Store a paid-for image (bytes in the image table) and add its cost to the unit.

        ``settle`` runs in the same transaction and returns the cost it turned from a
        reservation into spend (0 if that was done already): the image, its cost and the
        budget's spend are then written together or not at all. If the unit already has an
        image (another writer was first), that one is kept; the cost is still added.
        """
        if not data:
            raise ValueError(f"{key}: an image cannot be empty")
        if cost_usd < 0:
            raise ValueError(f"{key}: cost_usd {cost_usd} must be >= 0")
        info = json_object(meta, "image meta")
        digest = hashlib.sha256(data).hexdigest()
        content_type = str(info.get("content_type") or sniff_content_type(data) or "")

        def change(unit: Unit, conn: Connection) -> dict[str, Any]:
            added = cost_usd if settle is None else settle(conn)
            total = unit.cost_usd + added
            if unit.image is not None:
                return {"cost_usd": total} if added else {}
            conn.execute(sa.delete(images_table).where(images_table.c.unit_key == key))
            conn.execute(
                images_table.insert().values(
                    unit_key=key, sha256=digest, data=data, created_at=now_utc()
                )
            )
            return {
                "image_sha256": digest,
                "image_size": len(data),
                "image_content_type": content_type or "application/octet-stream",
                "image_meta": info,
                "cost_usd": total,
                "status": self._advance(unit, Stage.IMAGE_DONE),
                "error": None,
            }

        return self._mutate(key, change)

    def record_cost(
        self,
        key: str,
        cost_usd: float,
        *,
        settle: Callable[[Connection], float] | None = None,
    ) -> Unit:
        """Add money paid for the unit's results that came to nothing (an image rejected as
        invalid or NSFW), so ``cost`` matches the bill; ``settle`` as in ``record_image``."""
        if cost_usd < 0:
            raise ValueError(f"{key}: cost_usd {cost_usd} must be >= 0")

        def change(unit: Unit, conn: Connection) -> dict[str, Any]:
            added = cost_usd if settle is None else settle(conn)
            return {"cost_usd": unit.cost_usd + added} if added else {}

        return self._mutate(key, change)

    def load_image(self, key: str) -> StoredImage | None:
        """The unit's stored image, or None (no image yet, or dropped after confirmation)."""
        query = (
            sa.select(units_table, images_table.c.data, images_table.c.sha256.label("blob_sha"))
            .join(images_table, images_table.c.unit_key == units_table.c.unit_key)
            .where(units_table.c.unit_key == key)
        )
        with self._transaction() as conn:
            row = conn.execute(query).one_or_none()
        if row is None:
            return None
        unit = row_to_unit(row)
        data = bytes(row.data)
        if unit.image is None or hashlib.sha256(data).hexdigest() != unit.image.sha256:
            raise LedgerError(f"{key}: the stored image does not match its checksum")
        return StoredImage(data, unit.image)

    def record_upload(self, key: str, media_id: str) -> Unit:
        """The image was PUT under ``media_id`` (not yet confirmed); a later re-presign
        replaces it until the upload is confirmed."""
        _require(media_id, "media_id")

        def change(unit: Unit, _: Connection) -> dict[str, Any]:
            if unit.reached(Stage.CONFIRMED):
                return {}
            return {
                "media_id": media_id,
                "status": self._advance(unit, Stage.UPLOADED),
                "error": None,
            }

        return self._mutate(key, change)

    def record_media(self, key: str, media_id: str, variants: Sequence[Any] = ()) -> Unit:
        """The platform confirmed ``media_id``; the image bytes are no longer needed.

        A unit already confirmed with another media id keeps the first; the second is kept
        as an orphan and reported by ``duplicates()``.
        """
        _require(media_id, "media_id")
        shown = [variant_dict(variant) for variant in variants]

        def change(unit: Unit, conn: Connection) -> dict[str, Any]:
            if unit.reached(Stage.CONFIRMED) and unit.media_id:
                return _orphan(unit, "media_id", media_id)
            if not self.keep_images:
                conn.execute(sa.delete(images_table).where(images_table.c.unit_key == key))
            return {
                "media_id": media_id,
                "variants": shown,
                "status": self._advance(unit, Stage.CONFIRMED),
                "error": None,
            }

        return self._mutate(key, change)

    def record_created(self, key: str, remote_id: str | None = None) -> Unit:
        """The remote object exists: the character id, the post id, or for an avatar the
        attached media id (optional, it is known already).

        Compare the returned unit's ``remote_id`` with yours: if another writer recorded a
        different one first, yours is a duplicate on the platform (kept as an orphan).
        """
        kind = parse_unit_key(key).kind
        column = {
            CHARACTERS: "character_id",
            POSTS: "post_id",
            AVATARS: "media_id",
            BRIEFS: "media_id",
        }[kind]
        if kind in (CHARACTERS, POSTS):
            _require(remote_id, "remote_id")

        def change(unit: Unit, _: Connection) -> dict[str, Any]:
            if unit.done:
                known = getattr(unit, column)
                if remote_id and known and remote_id != known:
                    return _orphan(unit, column, remote_id)
                return {}
            values: dict[str, Any] = {"status": Stage.CREATED.label, "error": None}
            if remote_id:
                values[column] = remote_id
            return values

        return self._mutate(key, change)

    def record_failure(self, key: str, error: str | BaseException) -> Unit:
        """Count a failed attempt and keep its message; the unit's stage is unchanged."""
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"

        def change(unit: Unit, _: Connection) -> dict[str, Any]:
            return {"attempts": unit.attempts + 1, "error": text[:ERROR_MAX]}

        return self._mutate(key, change)


def _require(value: str | None, name: str) -> None:
    if not value or not isinstance(value, str):
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")


def _orphan(unit: Unit, column: str, remote_id: str) -> dict[str, Any]:
    kept = getattr(unit, column)
    if remote_id == kept or any(o["id"] == remote_id for o in unit.orphans):
        return {}
    entry = {"field": column, "id": remote_id, "kept": kept, "at": now_utc().isoformat()}
    return {"orphans": [*unit.orphans, entry]}


def _is_connect_error(exc: sa.exc.DBAPIError) -> bool:
    return isinstance(exc, sa.exc.OperationalError) and "connect" in str(exc.orig).lower()
