"""The worker's task threads: every item runs, no more than ``size`` at once, and the first runs start
while the rest of the threads are still being started."""

from __future__ import annotations

import threading
import time

from absurd.worker.threads import TaskThreads


def test_items_run_at_most_size_at_once_and_all_of_them_run() -> None:
    lock = threading.Lock()
    running = peak = done = 0
    all_done = threading.Event()

    def target(item: int) -> None:
        nonlocal running, peak, done
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.01)
        with lock:
            running -= 1
            done += 1
            if done == 40:
                all_done.set()

    threads: TaskThreads[int] = TaskThreads(4, target, "test-task")
    for i in range(40):
        threads.submit(i)
    assert all_done.wait(10)
    assert peak == 4  # all four threads came up and were used, and never a fifth
    threads.stop()


def test_the_first_item_runs_before_every_thread_has_started() -> None:
    first = threading.Event()
    threads: TaskThreads[int] = TaskThreads(512, lambda item: first.set(), "test-task")
    threads.submit(1)
    assert first.wait(10)
    # Starting 512 threads takes far longer than running one item on the first of them.
    with threads._lock:
        started = len(threads._threads)
    assert started < 512
    threads.stop()


def test_stop_ends_every_thread_and_drops_items_not_started() -> None:
    release = threading.Event()
    ran: list[int] = []
    threads: TaskThreads[int] = TaskThreads(2, lambda item: (release.wait(10), ran.append(item)), "test-task")
    threads.start()
    for i in range(10):
        threads.submit(i)
    time.sleep(0.2)  # two items are running; eight wait
    threads.stop()
    release.set()
    for thread in list(threads._threads):
        thread.join(5)
        assert not thread.is_alive()
    assert len(ran) == 2
