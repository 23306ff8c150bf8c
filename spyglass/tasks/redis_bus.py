"""The bus across workers: Redis pub/sub carries every change and cancel request.

Each worker fans a change out to its own subscribers at once (as `LocalBus` does) and
publishes it on Redis; the other workers receive it and fan it out to theirs. So a
task that runs on worker A streams to a socket held by worker B, and a cancel sent to
any worker reaches the one running the task. Messages of one publisher arrive in
order; publishing is batched (one pipeline per loop turn) so a chatty job costs Redis
one round trip per batch, not per update.

A worker that read a running task from the database (its progress up to one flush window
old) asks, on `{prefix}:ask`, for the task's current state (`request_current`); the worker
running it answers on the asker's own `{prefix}:for:<origin>`, after the task's earlier
changes, for the subscriber that asked alone.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import redis.asyncio as redis

from spyglass.tasks.bus import LocalBus, Subscription, TaskMessage

log = logging.getLogger(__name__)

#: Messages waiting for Redis beyond this are dropped, oldest progress first (an outage).
OUTBOX_LIMIT = 100_000
#: Seconds an answer to `request_current` is waited for (none comes for a task that runs
#: nowhere, or that ended; one that comes comes within milliseconds).
ANSWER_WAIT = 10.0
RECONNECT_DELAY = 1.0


class RedisBus(LocalBus):
    single_process = False

    def __init__(self, url: str, prefix: str = "spyglass") -> None:
        super().__init__()
        self.url = url
        self.prefix = prefix
        self.changes = f"{prefix}:changes"
        self.control = f"{prefix}:control"
        #: Questions for the current state of a task (`request_current`), to every process;
        #: each answer goes on the asking process's own channel (`_answers`).
        self.asks = f"{prefix}:ask"
        #: Tells this process's own messages apart when Redis echoes them back.
        self.origin = secrets.token_hex(8)
        self.connected = False
        self.received = 0
        self.sent = 0
        self._outbox: deque[tuple[str, str, bool, Callable[[], bool] | None]] = deque()
        self._wake = asyncio.Event()
        self._client: redis.Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Future[object]] = set()
        #: This process's `request_current`s still unanswered: the task and subscriber each
        #: is for, and until when an answer is waited for.
        self._ask_ids = itertools.count()
        self._asked: dict[int, tuple[str, Subscription, float]] = {}

    # -- publishing ----------------------------------------------------------
    def publish(self, msg: TaskMessage) -> None:
        self.deliver_here(msg)  # this process's subscribers at once
        self._send(self.changes, self._encode(msg), msg.droppable, msg.fence)

    @property
    def _answers(self) -> str:
        """This process's own channel: the answers to its `request_current`s."""
        return f"{self.prefix}:for:{self.origin}"

    def _encode(self, msg: TaskMessage) -> str:
        """A change as it goes on Redis: a header of its routing fields, a newline, its
        payload."""
        head = {
            "o": self.origin,
            "t": time.time(),
            "task_id": msg.task_id,
            "state_name": msg.state_name,
            "owner_id": msg.owner_id,
            "client_id": msg.client_id,
            "version": msg.version,
            "terminal": msg.terminal,
            "droppable": msg.droppable,
            "attempt": msg.attempt,
        }
        return f"{json.dumps(head, separators=(',', ':'))}\n{msg.json()}"

    def has_listeners(self, task_id: str) -> bool:
        return True  # other workers may be listening

    def request_cancel(self, task_id: str) -> None:
        self._cancel_here(task_id)
        body = json.dumps({"o": self.origin, "cancel": task_id})
        self._send(self.control, body, False)

    def request_current(self, task_id: str, sub: Subscription) -> None:
        self._forget_unanswered()
        ask = next(self._ask_ids)
        self._asked[ask] = (task_id, sub, time.monotonic() + ANSWER_WAIT)
        body = json.dumps({"o": self.origin, "current": task_id, "r": ask})
        self._send(self.asks, body, False)

    def _forget_unanswered(self) -> None:
        """Questions nobody answered in time (the task ended, or runs nowhere)."""
        now = time.monotonic()
        while self._asked and next(iter(self._asked.values()))[2] < now:
            del self._asked[next(iter(self._asked))]

    def _answer_current(self, task_id: str, origin: str, ask: int) -> None:
        """Another process's `request_current`, for a task that may run here: answered on
        that process's own channel, after every change of the task this one sent before
        (one connection publishes both, in order; the asker reads both on one)."""
        msg = self._current_handler(task_id) if self._current_handler is not None else None
        if msg is not None:
            answer = f"{ask}\n{self._encode(msg)}"
            self._send(f"{self.prefix}:for:{origin}", answer, msg.droppable, msg.fence)

    def _take_answer(self, data: str) -> None:
        """An answer to one of this process's `request_current`s: for the subscriber that
        asked, if it still listens, and only if it is of the task it asked about."""
        ask, _, change = data.partition("\n")
        try:
            asked = self._asked.pop(int(ask), None)
            msg = self._decode(change, restated=True) if asked is not None else None
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed answer on %s", self._answers)
            return
        self._forget_unanswered()
        if asked is None or msg is None:
            return
        task_id, sub, _ = asked
        if not sub.closed and msg.task_id == task_id and sub.topic.matches(msg):
            self.deliver_to(sub, msg)

    def _send(
        self, channel: str, body: str, droppable: bool, fence: Callable[[], bool] | None = None
    ) -> None:
        self._outbox.append((channel, body, droppable, fence))
        if len(self._outbox) > OUTBOX_LIMIT:
            self._shed()
        self._wake.set()

    def _shed(self) -> None:
        for i, (_, _, droppable, _) in enumerate(self._outbox):
            if droppable:
                del self._outbox[i]
                return
        self._outbox.popleft()
        log.warning("Redis is not keeping up: a bus message was dropped")

    # -- lifecycle -----------------------------------------------------------
    async def start(self) -> None:
        # Named here, not at construction: workers forked from one parent each need their own.
        self.origin = secrets.token_hex(8)
        self._client = redis.from_url(self.url, decode_responses=True)
        try:
            await self._client.ping()  # type: ignore[misc]  # redis-py types sync and async alike
        except redis.RedisError as exc:
            raise RuntimeError(f"cannot reach Redis at {self.url}: {exc}") from exc
        ready = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._read(ready), name="spyglass-bus-read"),
            asyncio.create_task(self._write(), name="spyglass-bus-write"),
        ]
        await asyncio.wait_for(ready.wait(), timeout=10)

    async def close(self) -> None:
        await self._flush(timeout=2.0)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
        await super().close()

    async def _flush(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self._outbox and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    # -- the two loops -------------------------------------------------------
    async def _write(self) -> None:
        assert self._client is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._outbox:
                batch = [self._outbox.popleft() for _ in range(min(len(self._outbox), 500))]
                # A lease lost while the message waited (the process stalled): not sent.
                batch = [entry for entry in batch if entry[3] is None or entry[3]()]
                try:
                    async with self._client.pipeline(transaction=False) as pipe:
                        for channel, body, _, _ in batch:
                            pipe.publish(channel, body)
                        await pipe.execute()
                    self.sent += len(batch)
                except (redis.RedisError, OSError) as exc:
                    log.warning("publishing to Redis failed (%s); retrying", exc)
                    self._outbox.extendleft(reversed(batch))
                    await asyncio.sleep(RECONNECT_DELAY)

    async def _read(self, ready: asyncio.Event) -> None:
        assert self._client is not None
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                # A process that follows nobody's changes asks no questions: it only answers.
                channels = [self.changes, self._answers] if self.follows_changes else []
                await pubsub.subscribe(*channels, self.control, self.asks)
                self.connected = True
                if ready.is_set():  # back after an outage: what was missed is read anew
                    log.info("Redis subscription restored")
                    for handler in self._resync_handlers:
                        result = handler()
                        if asyncio.iscoroutine(result):
                            task = asyncio.ensure_future(result)
                            self._background.add(task)
                            task.add_done_callback(self._background.discard)
                ready.set()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._receive(message["channel"], message["data"])
            except (redis.RedisError, OSError) as exc:
                self.connected = False
                log.warning("lost the Redis subscription (%s); reconnecting", exc)
                await asyncio.sleep(RECONNECT_DELAY)
            finally:
                self.connected = False
                await pubsub.aclose()

    def _receive(self, channel: str, data: str) -> None:
        if channel == self.changes:
            try:
                msg = self._decode(data)
            except (ValueError, KeyError, TypeError):
                log.warning("ignored a malformed bus message on %s", channel)
                return
            if msg is not None:
                self.deliver_here(msg)
        elif channel == self._answers:
            self._take_answer(data)
        else:
            try:
                body = json.loads(data)
                if body.get("o") != self.origin:
                    if channel == self.asks:
                        self._answer_current(str(body["current"]), str(body["o"]), int(body["r"]))
                    else:
                        self._cancel_here(str(body["cancel"]))
            except (ValueError, KeyError, TypeError):
                log.warning("ignored a malformed bus message on %s", channel)

    def _decode(self, data: str, restated: bool = False) -> TaskMessage | None:
        """A change another process published (None: this one's own, or one nobody here
        follows, left undecoded); raises ValueError, KeyError or TypeError if malformed."""
        head, _, payload = data.partition("\n")
        meta: dict[str, Any] = json.loads(head)
        if meta["o"] == self.origin:
            return None
        self.received += 1
        if self.on_lag is not None:
            self.on_lag(max(0.0, time.time() - meta["t"]))
        if not restated and not LocalBus.has_listeners(self, meta["task_id"]):
            return None  # nobody here follows it: not decoded
        return TaskMessage(
            task_id=meta["task_id"],
            state_name=meta["state_name"],
            owner_id=meta["owner_id"],
            client_id=meta["client_id"],
            version=meta["version"],
            terminal=meta["terminal"],
            droppable=meta["droppable"],
            attempt=int(meta.get("attempt") or 0),
            payload=json.loads(payload),
            _json=payload,
            restated=restated,
        )

    def health(self) -> dict[str, Any]:
        return {
            **super().health(),
            "redis": "connected" if self.connected else "disconnected",
            "status": "ok" if self.connected else "error",
            "sent": self.sent,
            "received": self.received,
            "waiting": len(self._outbox),
        }
