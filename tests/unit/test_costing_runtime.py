import gc

from services.costing.runtime import GC_THRESHOLDS, tune_garbage_collector


def test_tuning_freezes_start_up_objects_and_collects_less_often():
    before = gc.get_threshold()
    try:
        tune_garbage_collector()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_threshold()[0] > before[0]
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
