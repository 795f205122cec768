"""Fixtures shared by the test modules."""

# The database fixture (``db_url``: a fresh SQLite file, and a fresh PostgreSQL database when a
# server is up) lives with its helpers in _store_db.py; registering it here makes it available
# to every module without an import that only exists for its side effect.
pytest_plugins = ["_store_db"]
