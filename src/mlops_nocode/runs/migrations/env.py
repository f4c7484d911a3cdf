"""Alembic environment: runs on the connection the caller put in `config.attributes` (see Database.migrate),
or on `sqlalchemy.url` when run from the alembic command line."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from mlops_nocode.runs.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection, target_metadata=target_metadata, render_as_batch=True, compare_type=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations() -> None:
    """Online migrations only: the gateway always has a database to talk to."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    assert url, "set sqlalchemy.url"
    with create_engine(url).connect() as conn:
        _run(conn)
        conn.commit()


run_migrations()
