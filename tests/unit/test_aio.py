"""shared.aio: the backoff and the wake loop the outbox relay and the QuickBooks worker run."""

import asyncio

import pytest

from shared.aio import Backoff, wake_loop


def test_backoff_doubles_up_to_the_cap_and_resets():
    backoff = Backoff(0.1, 0.5)
    assert [backoff.next_delay() for _ in range(5)] == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])
    assert backoff.failures == 5
    backoff.reset()
    assert backoff.failures == 0 and backoff.next_delay() == pytest.approx(0.1)


def test_a_cap_below_the_first_delay_wins():
    assert Backoff(1.0, 0.25).next_delay() == 0.25


def test_jitter_shortens_a_delay_by_at_most_its_share():
    assert Backoff(1.0, 8.0, jitter=0.5, rng=lambda: 1.0).next_delay() == 0.5
    assert Backoff(1.0, 8.0, jitter=0.5, rng=lambda: 0.0).next_delay() == 1.0


@pytest.mark.parametrize("args", [(0, 1), (1, 0), (1, 1, 0.5), (1, 1, 2, 1.5)])
def test_nonsense_is_refused(args):
    with pytest.raises(ValueError):
        Backoff(*args)


async def test_wake_loop_retries_after_a_failure_and_waits_when_idle():
    calls, errors, wake = [], [], asyncio.Event()
    outcomes = iter([RuntimeError("down"), True, False])

    async def step() -> bool:
        calls.append(asyncio.get_running_loop().time())
        outcome = next(outcomes, False)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def on_error(exc: Exception, delay: float) -> None:
        errors.append((str(exc), delay))

    backoff = Backoff(0.01, 1.0)
    task = asyncio.create_task(wake_loop(step, wake, idle_timeout=30, backoff=backoff, on_error=on_error))
    for _ in range(100):
        await asyncio.sleep(0.01)
        if len(calls) == 3:
            break
    assert errors == [("down", 0.01)] and len(calls) == 3 and backoff.failures == 0  # reset after a success
    wake.set()  # idle: only a wake-up runs it again
    for _ in range(100):
        await asyncio.sleep(0.01)
        if len(calls) == 4:
            break
    assert len(calls) == 4
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_quiet_garbage_collector_freezes_start_up_objects_and_raises_the_thresholds():
    import gc

    from shared.aio import GC_THRESHOLDS, quiet_garbage_collector

    before = gc.get_threshold()
    started_with = [[n] for n in range(100)]  # what a service allocated while starting (tracked objects)
    try:
        quiet_garbage_collector()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() >= len(started_with)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
