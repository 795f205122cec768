"""Fixtures shared by the test modules."""

import pytest

# The database fixture (``db_url``: a fresh SQLite file, and a fresh PostgreSQL database when a
# server is up) lives with its helpers in _store_db.py; registering it here makes it available
# to every module without an import that only exists for its side effect.
pytest_plugins = ["_store_db"]


@pytest.fixture(autouse=True, scope="session")
def _private_build_check_cache(tmp_path_factory: pytest.TempPathFactory):
    # queue add's build-check records go to $XDG_CACHE_HOME/ganlab/build-checks: one folder per session,
    # never the user's own cache (tests that set GANLAB_CACHE_DIR keep theirs beside it).
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        yield


@pytest.fixture(scope="module")
def feature_net_cache(tmp_path_factory: pytest.TempPathFactory):
    # One GANLAB_CACHE_DIR per module: a data set's feature net is trained once there, never in the user's cache.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANLAB_CACHE_DIR", str(tmp_path_factory.mktemp("featurenets")))
        yield
