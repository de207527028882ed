"""The costing consumer logs per-event lines at DEBUG and a summary at INFO at most every
PROGRESS_EVERY seconds (services/costing/consumer.py Progress)."""

from services.costing import consumer


def test_progress_summarises_at_most_once_per_interval(monkeypatch):
    now = [0.0]
    lines: list[dict] = []
    monkeypatch.setattr(consumer.log, "info", lambda event, **kw: lines.append({"event": event, **kw}))
    progress = consumer.Progress(every=10.0, clock=lambda: now[0])
    for _ in range(5):
        progress.count("applied")
        progress.report()
    progress.count("duplicates")
    now[0] = 9.9
    progress.report()
    assert lines == []  # not yet: one line per interval, not per event
    now[0] = 10.0
    progress.count("dead_lettered")
    progress.report()
    assert [(line["applied"], line["duplicates"], line["dead_lettered"]) for line in lines] == [(5, 1, 1)]
    now[0] = 25.0
    progress.report()  # nothing counted since: no line
    assert len(lines) == 1
