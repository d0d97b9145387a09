"""The worker pool's watcher (deadlines) and event loops watching workers' sockets."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from lakelet.functions.runtime.pool import SAMPLE_AFTER_TICKS, Worker, WorkerPool
from lakelet.functions.runtime.zygote import Zygote

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="pidfds and /proc: Linux")


@pytest.fixture
def pool() -> Iterator[WorkerPool]:
    zygote = Zygote([])  # never started: these workers are made by hand
    pool = WorkerPool(zygote, idle_timeout_s=300.0, memory_poll_s=0.01)
    yield pool
    pool.close()


@pytest.fixture
def process() -> Iterator[subprocess.Popen[bytes]]:
    """A process to stand for a worker (the pool may kill it)."""
    sleeper = subprocess.Popen(["sleep", "30"])
    yield sleeper
    sleeper.kill()
    sleeper.wait()


def fake_worker(pid: int) -> tuple[Worker, socket.socket]:
    """A worker around any process, and the other end of its socket."""
    ours, theirs = socket.socketpair()
    worker = Worker(
        "f", pid, ours, time.monotonic_ns(), 1 << 40, pidfd=os.pidfd_open(pid), invocations=1
    )
    return worker, theirs


async def reader_fires_on_reused(fd: int) -> None:
    """A new socket that gets descriptor number ``fd`` can be watched by the running
    loop (a selector still holding the old one would take the registration silently
    and never report it readable)."""
    loop = asyncio.get_running_loop()
    pairs: list[tuple[socket.socket, socket.socket]] = []
    try:
        while not any(fd in (a.fileno(), b.fileno()) for a, b in pairs):
            assert len(pairs) < 50, "the descriptor number was never reused"
            pairs.append(socket.socketpair())
        a, b = pairs[-1]
        other = b if a.fileno() == fd else a
        readable = asyncio.Event()
        loop.add_reader(fd, readable.set)
        try:
            other.send(b"x")
            await asyncio.wait_for(readable.wait(), timeout=2)
        finally:
            loop.remove_reader(fd)
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def test_the_watcher_kills_a_worker_past_its_deadline(
    pool: WorkerPool, process: subprocess.Popen[bytes]
) -> None:
    worker, _peer = fake_worker(process.pid)
    pool.checkin(worker)
    assert pool.take("f") is worker
    pool.sent(worker, 0.2)
    started = time.monotonic()
    assert process.wait(timeout=5) == -9  # SIGKILL
    assert 0.2 <= time.monotonic() - started < 2
    assert worker.killed_for == "timeout"


def test_a_worker_closed_from_another_thread_leaves_its_loop_no_stale_descriptor(
    pool: WorkerPool, process: subprocess.Popen[bytes]
) -> None:
    worker, peer = fake_worker(process.pid)
    pool.checkin(worker)

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        assert pool.take("f", loop) is worker
        pool.watch(worker, loop)
        fd = worker.sock.fileno()
        pool.checkin(worker)  # idle, still watched by this loop
        assert pool.take("f", loop) is worker  # watched: lent without a check
        pool.checkin(worker)
        assert await asyncio.to_thread(pool.stop_idle) == 1  # another thread: ends only
        assert peer.recv(1) == b""  # the worker sees end of stream at once
        for _ in range(100):
            if worker.sock.fileno() == -1:
                break
            await asyncio.sleep(0.01)
        assert worker.sock.fileno() == -1  # the loop forgot it, then closed it
        await reader_fires_on_reused(fd)

    asyncio.run(scenario())


def test_a_worker_closed_on_its_loop_closes_at_once(
    pool: WorkerPool, process: subprocess.Popen[bytes]
) -> None:
    worker, peer = fake_worker(process.pid)
    pool.checkin(worker)

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        assert pool.take("f", loop) is worker
        pool.watch(worker, loop)
        fd = worker.sock.fileno()
        pool.checkin(worker)
        assert pool.stop_idle() == 1
        assert worker.sock.fileno() == -1
        assert peer.recv(1) == b""
        await reader_fires_on_reused(fd)

    asyncio.run(scenario())


def test_an_idle_worker_that_exited_is_not_lent(
    pool: WorkerPool, process: subprocess.Popen[bytes]
) -> None:
    worker, peer = fake_worker(process.pid)
    pool.checkin(worker)
    peer.close()  # as when the process exits
    assert pool.take("f") is None
    assert worker.sock.fileno() == -1


def test_the_watcher_sleeps_until_a_busy_worker_needs_it(
    pool: WorkerPool, process: subprocess.Popen[bytes]
) -> None:
    worker, _theirs = fake_worker(process.pid)
    tick = pool.memory_poll_s
    settle = tick * SAMPLE_AFTER_TICKS
    now = time.monotonic()
    worker.busy_since, worker.deadline = now, now + 30
    assert pool._until_due([worker], now) == pytest.approx(settle)  # short calls: rarely
    worker.busy_since = now - settle + 2 * tick
    assert pool._until_due([worker], now) == pytest.approx(2 * tick)  # its first sample
    worker.busy_since = now - 1
    assert pool._until_due([worker], now) == pytest.approx(tick)  # sampled every tick
    worker.busy_since, worker.deadline = now, now + 3 * tick
    assert pool._until_due([worker], now) == pytest.approx(3 * tick)  # its deadline
    worker.deadline = now - 1
    assert pool._until_due([worker], now) == pytest.approx(tick)  # never a busy spin


def test_a_short_call_is_killed_at_its_deadline_though_the_watcher_slept(
    pool: WorkerPool, process: subprocess.Popen[bytes]
) -> None:
    worker, _theirs = fake_worker(process.pid)
    with pool._lock:
        pool._busy.add(worker)
    pool._wake.set()
    time.sleep(0.2)  # the watcher polls, every few ticks only
    started = time.monotonic()
    pool.sent(worker, 3 * pool.memory_poll_s)  # due long before its next wake
    process.wait(timeout=5)
    assert worker.killed_for == "timeout"
    assert time.monotonic() - started < SAMPLE_AFTER_TICKS * pool.memory_poll_s + 0.2
