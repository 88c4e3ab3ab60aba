"""Stopping a background task: its own end is absorbed, the stopper's cancellation is not."""
from __future__ import annotations

import asyncio

import pytest

from engine.tasks import stop_task


@pytest.mark.asyncio
async def test_a_running_task_is_cancelled_and_awaited():
    ran_cleanup = []

    async def poller():
        try:
            await asyncio.sleep(3600)
        finally:
            ran_cleanup.append(True)

    task = asyncio.create_task(poller())
    await asyncio.sleep(0)
    await stop_task(task)
    assert task.cancelled() and ran_cleanup == [True]
    await stop_task(None)  # nothing to stop
    await stop_task(task)  # already stopped


@pytest.mark.asyncio
async def test_a_task_that_fails_on_its_way_out_does_not_fail_the_stopper():
    async def broken():
        try:
            await asyncio.sleep(3600)
        finally:
            raise RuntimeError("socket already closed")

    task = asyncio.create_task(broken())
    await asyncio.sleep(0)
    await stop_task(task)
    assert isinstance(task.exception(), RuntimeError)


@pytest.mark.asyncio
async def test_the_stoppers_own_cancellation_is_not_swallowed():
    release = asyncio.Event()

    async def slow_to_stop():
        try:
            await asyncio.sleep(3600)
        finally:
            await release.wait()  # cleanup that takes a while

    task = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    stopper = asyncio.create_task(stop_task(task))
    await asyncio.sleep(0.01)
    stopper.cancel()  # e.g. shutdown gives up on a close()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await stopper
    assert stopper.cancelled()
