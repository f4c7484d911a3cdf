"""Runs: persistence (SQLAlchemy 2 + Alembic), the run service, API keys and the workers that execute runs."""
