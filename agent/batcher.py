"""Micro-batching: requests from many sessions that arrive together run as one forward pass, in a worker thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from agent.tasks import cancel_and_wait

In = TypeVar("In")
Out = TypeVar("Out")


class MicroBatcher(Generic[In, Out]):
    """Run `fn` once on everything waiting (up to `max_batch`): the items that arrived while the previous batch ran
    form the next one, so a lone item on an idle server runs at once (no waiting for company) and under load the
    batches grow by themselves. `max_wait_s` > 0 additionally holds a batch that long after its first item for more.

    `fn` is blocking (a model forward pass) and runs via asyncio.to_thread; one batch runs at a time, and the next
    batch collects while it runs. A failure of `fn` fails every request of that batch with the same exception.
    """

    def __init__(
        self, fn: Callable[[Sequence[In]], Sequence[Out]], max_batch: int = 32, max_wait_s: float = 0.0
    ) -> None:
        self._fn, self._max_batch, self._max_wait_s = fn, max_batch, max_wait_s
        self._queue: asyncio.Queue[tuple[In, asyncio.Future[tuple[Out, int]]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="micro-batcher")

    async def aclose(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def submit(self, item: In) -> tuple[Out, int]:
        """The result for `item`, and the size of the batch it ran in."""
        self.start()
        fut: asyncio.Future[tuple[Out, int]] = asyncio.get_running_loop().create_future()
        await self._queue.put((item, fut))
        return await fut

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            deadline = loop.time() + self._max_wait_s
            while len(batch) < self._max_batch and self._max_wait_s > 0:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), timeout))
                except TimeoutError:
                    break
            live = [(x, f) for x, f in batch if not f.cancelled()]
            if not live:
                continue
            try:
                results = await asyncio.to_thread(self._fn, [x for x, _ in live])
            except Exception as exc:  # noqa: BLE001 - handed to every waiting caller
                for _, f in live:
                    if not f.done():
                        f.set_exception(exc)
                continue
            for (_, f), r in zip(live, results, strict=True):
                if not f.done():
                    f.set_result((r, len(live)))
