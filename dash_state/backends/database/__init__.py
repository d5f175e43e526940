"""The database backend (:mod:`.database`): sealed values in one SQL table (SQLite, PostgreSQL, MySQL)."""
from dash_state.backends.database.database import SCHEMA_VERSION, DatabaseBackend, define_tables, from_config

__all__ = ["DatabaseBackend", "SCHEMA_VERSION", "from_config", "define_tables"]
