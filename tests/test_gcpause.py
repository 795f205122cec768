"""The collector pause used around bulk queueing is always undone."""

import gc

import pytest

from ganlab.gcpause import cyclic_gc_paused


def test_pause_restores_the_collector_even_on_error():
    assert gc.isenabled()
    with pytest.raises(ValueError):
        with cyclic_gc_paused():
            assert not gc.isenabled()
            raise ValueError("boom")
    assert gc.isenabled()


def test_nested_pauses_and_an_already_disabled_collector_stay_as_found():
    with cyclic_gc_paused():
        with cyclic_gc_paused():
            pass
        assert not gc.isenabled()  # the inner block must not re-enable it early
    assert gc.isenabled()
    gc.disable()
    try:
        with cyclic_gc_paused():
            pass
        assert not gc.isenabled()  # someone else turned it off: leave it off
    finally:
        gc.enable()
