"""Pub/sub of task changes: every change reaches its subscribers at once, in order.

`Bus` is the interface; `LocalBus` fans out inside one process. A subscriber
gets messages through its own bounded buffer: a slow reader loses only
intermediate progress updates, never a status change or a terminal message,
and never slows the publisher or the other readers.
"""

from __future__ import annotations

import asyncio
import json
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pydantic_core


@dataclass(slots=True)
class TaskMessage:
    """One change of one task; `payload` is what sockets send (routing fields stay private)."""

    task_id: str
    state_name: str
    owner_id: int | None
    client_id: str | None
    version: int
    terminal: bool
    droppable: bool
    payload: dict[str, Any]
    _json: str | None = field(default=None, repr=False)
    #: For a message of a task run under a lease: whether this process still holds it. A
    #: bus between processes sends the message on only while it does, so what a stalled
    #: process queued before it stalled never reaches others after the task moved on.
    fence: Callable[[], bool] | None = field(default=None, repr=False, compare=False)
    #: The attempt of the run that sent it (0: not known, never judged stale by it).
    attempt: int = 0
    #: A restatement of the task's state as of `version` (no change of its own), told to
    #: one reader that asked for it (`Bus.request_current`): a reader already told that
    #: version may skip it.
    restated: bool = False

    _frame: dict[str, str] | None = field(default=None, repr=False, compare=False)

    def json(self) -> str:
        """Encoded once, however many subscribers send it (pydantic-core's encoder, several
        times quicker than the standard library's; anything it cannot encode is written as
        its `str`, and a value it refuses, such as bytes that are not UTF-8, goes through
        the standard library's as before)."""
        if self._json is None:
            try:
                self._json = pydantic_core.to_json(self.payload, fallback=str).decode()
            except pydantic_core.PydanticSerializationError:
                self._json = json.dumps(self.payload, default=str, separators=(",", ":"))
        return self._json

    def frame(self) -> dict[str, str]:
        """The ASGI message that writes it to a socket: one for every socket (a server's
        `send` reads it, never changes it)."""
        if self._frame is None:
            self._frame = {"type": "websocket.send", "text": self.json()}
        return self._frame


@dataclass(frozen=True, slots=True)
class Topic:
    """What a subscriber wants: one task, or every task matching the other fields."""

    task_id: str | None = None
    state_name: str | None = None
    client_id: str | None = None
    owner_id: int | None = None

    def matches(self, msg: TaskMessage) -> bool:
        return (
            (self.task_id is None or msg.task_id == self.task_id)
            and (self.state_name is None or msg.state_name == self.state_name)
            and (self.client_id is None or msg.client_id == self.client_id)
            and (self.owner_id is None or msg.owner_id == self.owner_id)
        )


class SubscriptionClosed(Exception):
    """The subscription was closed while waiting for a message."""


#: Tasks a subscription remembers the attempt and end of (the oldest are forgotten first).
SEEN_LIMIT = 10_000


def in_order(seen: dict[str, tuple[int, bool]], msg: TaskMessage) -> bool:
    """Whether `msg` may still be told to a reader that was told what `seen` records (per
    task: the newest attempt, whether its end; updated here): nothing of a task follows its
    end (but its deletion), nor a message of an attempt older than one already seen. Such
    are a stalled process's, arriving late after another took its task over."""
    if msg.payload.get("type") == "deleted":
        return True
    task_seen = seen.get(msg.task_id)
    if task_seen is not None and (task_seen[1] or 0 < msg.attempt < task_seen[0]):
        return False
    if msg.attempt or msg.terminal:
        attempt = max(msg.attempt, task_seen[0] if task_seen is not None else 0)
        seen[msg.task_id] = (attempt, msg.terminal)
        if len(seen) > SEEN_LIMIT:
            seen.pop(next(iter(seen)))
    return True


class Subscription:
    """What one reader (a socket, a page) is told, in order, as fast as it reads.

    A reader that falls behind is sent only the newest progress of each task among what
    waits for it: a progress message still unread, with nothing but other progress after
    it, is replaced by the next one of its task. Status changes, timeline lines and ends
    are never dropped nor reordered; a reader that keeps up gets every message.
    """

    #: Slots, not a dict per reader: a fan-out to a thousand sockets reads each reader's
    #: fields at a fixed place in the object (fewer cache lines per reader and message).
    __slots__ = (
        "_buffer",
        "_direct",
        "_listener",
        "_ready",
        "_replaceable",
        "_seen",
        "_taken",
        "bus",
        "closed",
        "dropped",
        "maxsize",
        "stale",
        "topic",
    )

    def __init__(self, bus: Bus, topic: Topic, maxsize: int = 4096) -> None:
        self.bus = bus
        self.topic = topic
        self.maxsize = maxsize
        #: Progress messages replaced by newer ones (or shed at `maxsize`) before being read.
        self.dropped = 0
        #: Messages refused as stale (see `_in_order`).
        self.stale = 0
        self.closed = False
        self._buffer: deque[TaskMessage] = deque()
        self._ready = asyncio.Event()
        #: Per task: the newest attempt seen and whether its end was.
        self._seen: dict[str, tuple[int, bool]] = {}
        #: How many messages were ever taken from the front of the buffer, and, per task,
        #: the absolute place of its unread progress message that may still be replaced
        #: (none follows it but progress).
        self._taken = 0
        self._replaceable: dict[str, int] = {}
        #: Called (with nothing) after each message is buffered and when the subscription
        #: closes: a reader that writes on callbacks instead of awaiting `get` (`listen`).
        self._listener: Callable[[], object] | None = None
        #: Offered each message while nothing is buffered; True: taken (see `listen`).
        self._direct: Callable[[TaskMessage], bool] | None = None

    def deliver(self, msg: TaskMessage) -> None:
        if self.closed:
            return
        if not in_order(self._seen, msg):
            self.stale += 1
            return
        self.accept(msg)

    def accept(self, msg: TaskMessage) -> None:
        """`deliver` for a message already judged in order (`in_order`) for this reader."""
        if self.closed:
            return
        if self._direct is not None and not self._buffer and self._direct(msg):
            return  # a reader that keeps up took it at once: nothing to buffer or wake
        self.hold(msg)

    def hold(self, msg: TaskMessage) -> None:
        """Buffer a message (open, in order) that was not offered or not taken at once, and
        tell the listener. `LocalBus.deliver_here` offers a task's own readers their
        messages itself (one call less per reader on the fan-out's path), then holds what
        a reader did not take."""
        if msg.droppable:
            at = self._replaceable.get(msg.task_id)
            if at is not None and at >= self._taken:
                self._buffer[at - self._taken] = msg  # newer progress, same place
                self.dropped += 1
                self._wake()
                return
            self._replaceable[msg.task_id] = self._taken + len(self._buffer)
        elif self._replaceable:
            self._replaceable.clear()  # what came before this one keeps its order
        self._buffer.append(msg)
        if len(self._buffer) > self.maxsize:
            self._drop_one()
        self._wake()

    def _wake(self) -> None:
        self._ready.set()
        if self._listener is not None:
            self._listener()

    def listen(
        self,
        listener: Callable[[], object] | None,
        direct: Callable[[TaskMessage], bool] | None = None,
    ) -> None:
        """Call `listener()` whenever a message is buffered and when the subscription closes
        (None: no more), so that a reader can `take` without a task waiting in `get`.

        With `direct`, a message that comes while nothing is buffered is first offered to
        `direct(msg)`; True means the reader took it (then it is neither buffered nor
        announced), False that it is buffered as any other. Order is kept: nothing is offered
        while anything waits. Both run inside the publisher's call: they must be quick and
        must not raise."""
        self._listener = listener
        self._direct = direct

    @property
    def waiting(self) -> int:
        """How many messages wait to be read."""
        return len(self._buffer)

    def take(self) -> TaskMessage | None:
        """The oldest unread message, or None when none waits (never waits)."""
        if not self._buffer:
            return None
        self._taken += 1
        return self._buffer.popleft()

    def _drop_one(self) -> None:
        for i, old in enumerate(self._buffer):
            if old.droppable:
                del self._buffer[i]
                self.dropped += 1
                self._replaceable.clear()  # places after it moved
                return

    async def get(self) -> TaskMessage:
        while not self._buffer:
            if self.closed:
                raise SubscriptionClosed
            self._ready.clear()
            await self._ready.wait()
        self._taken += 1
        return self._buffer.popleft()

    async def get_batch(self, max_items: int = 1000) -> list[TaskMessage]:
        """Wait for at least one message, then take what is buffered (up to max_items)."""
        first = await self.get()
        batch = [first]
        while self._buffer and len(batch) < max_items:
            batch.append(self._buffer.popleft())
        self._taken += len(batch) - 1
        return batch

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.bus.unsubscribe(self)
            self._wake()

    def __aiter__(self) -> AsyncIterator[TaskMessage]:
        return self

    async def __anext__(self) -> TaskMessage:
        try:
            return await self.get()
        except SubscriptionClosed:
            raise StopAsyncIteration from None

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Bus(ABC):
    #: True when no other process can hold tasks (so tasks found active at start are orphans).
    single_process: bool = True
    #: Whether this process receives other processes' changes. A `spyglass worker` holds no
    #: sockets or pages, so it takes only cancel requests: every change it would receive
    #: otherwise (every task's, from every process) cost it a read and a decode.
    follows_changes: bool = True

    def __init__(self) -> None:
        self._cancel_handlers: list[Callable[[str], object]] = []
        self._current_handler: Callable[[str], TaskMessage | None] | None = None
        self._resync_handlers: list[Callable[[], object]] = []
        #: Called with the seconds a message spent between processes (buses between
        #: processes measure it; one process's own has none).
        self.on_lag: Callable[[float], object] | None = None

    def on_resync(self, handler: Callable[[], object]) -> None:
        """Call `handler()` after messages may have been missed (the link to other
        processes came back): it should bring this process's subscribers up to date."""
        self._resync_handlers.append(handler)

    @abstractmethod
    def publish(self, msg: TaskMessage) -> None: ...

    def deliver_here(self, msg: TaskMessage) -> None:
        """Fan a message out to this process's subscribers only (others are not told)."""
        self.publish(msg)

    def on_cancel(self, handler: Callable[[str], object]) -> None:
        """Call `handler(task_id)` when any process asks for a task to be cancelled."""
        self._cancel_handlers.append(handler)

    def request_cancel(self, task_id: str) -> None:
        """Ask whichever process runs `task_id` to cancel it."""
        self._cancel_here(task_id)

    def _cancel_here(self, task_id: str) -> None:
        for handler in self._cancel_handlers:
            handler(task_id)

    def on_current(self, handler: Callable[[str], TaskMessage | None]) -> None:
        """Answer other processes' `request_current` with `handler(task_id)`: the current
        state of a task running here (a restatement), or None if it does not run here."""
        self._current_handler = handler

    def request_current(self, task_id: str, sub: Subscription) -> None:  # noqa: B027 (one process: none)
        """Ask the process running `task_id`, if it is another, to tell `sub` alone the
        task's current state, in order with the task's other messages: what a read of the
        database may not hold yet (progress is written there at most once per flush
        window). Within one process there is no other to ask."""

    @abstractmethod
    def subscribe(self, topic: Topic) -> Subscription: ...

    def has_listeners(self, task_id: str) -> bool:
        """False only when no subscriber anywhere could want this task's messages."""
        return True

    @abstractmethod
    def unsubscribe(self, sub: Subscription) -> None: ...

    @abstractmethod
    def followed_tasks(self) -> list[str]:
        """Tasks that have a subscriber of their own in this process."""

    @property
    @abstractmethod
    def subscriber_count(self) -> int: ...

    async def start(self) -> None:  # noqa: B027 (optional hook)
        """Connect to whatever carries messages between processes."""

    async def close(self) -> None:  # noqa: B027 (optional hook)
        """Close every subscription."""

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "kind": type(self).__name__, "subscribers": self.subscriber_count}


class _Followers:
    """The subscriptions of one task, and what they were told of it: whether a message is
    in order (`in_order`) is judged once for all of them."""

    __slots__ = ("seen", "subs")

    def __init__(self) -> None:
        #: In the order they subscribed (a message is written to the sockets in that order).
        self.subs: dict[Subscription, None] = {}
        self.seen: dict[str, tuple[int, bool]] = {}


class LocalBus(Bus):
    """In-process fan-out: subscribers of one task are found by id, the rest by filter."""

    def __init__(self) -> None:
        super().__init__()
        self._by_task: dict[str, _Followers] = {}
        #: Subscriptions by filter, in the order they subscribed (as a task's own).
        self._wide: dict[Subscription, None] = {}
        #: How many subscriptions there are (health asks often: kept, not counted).
        self._count = 0

    def publish(self, msg: TaskMessage) -> None:
        self.deliver_here(msg)

    def deliver_here(self, msg: TaskMessage) -> None:
        """Fan a message out to this process's subscribers only."""
        followers = self._by_task.get(msg.task_id)
        if followers is not None:
            if in_order(followers.seen, msg):
                for sub in tuple(followers.subs):  # `Subscription.accept`, inlined
                    if sub.closed:
                        continue
                    direct = sub._direct
                    if direct is None or sub._buffer or not direct(msg):
                        sub.hold(msg)
            else:
                for sub in followers.subs:
                    sub.stale += 1
        for sub in tuple(self._wide):
            if sub.topic.matches(msg):
                sub.deliver(msg)

    def deliver_to(self, sub: Subscription, msg: TaskMessage) -> None:
        """Tell one subscriber a message meant for it alone (nothing told the task's other
        readers changes: it is judged in order as theirs are, without recording it)."""
        followers = self._by_task.get(msg.task_id) if sub.topic.task_id is not None else None
        if followers is None:
            sub.deliver(msg)
        elif sub in followers.subs and in_order(dict(followers.seen), msg):
            sub.accept(msg)

    def has_listeners(self, task_id: str) -> bool:
        return bool(self._wide) or task_id in self._by_task

    def followed_tasks(self) -> list[str]:
        """Tasks that have a subscriber of their own in this process."""
        return list(self._by_task)

    def subscribe(self, topic: Topic) -> Subscription:
        sub = Subscription(self, topic)
        if topic.task_id is not None:
            followers = self._by_task.get(topic.task_id)
            if followers is None:
                followers = self._by_task[topic.task_id] = _Followers()
            followers.subs[sub] = None
        else:
            self._wide[sub] = None
        self._count += 1
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        task_id = sub.topic.task_id
        if task_id is not None:
            followers = self._by_task.get(task_id)
            if followers is None or sub not in followers.subs:
                return
            del followers.subs[sub]
            if not followers.subs:
                del self._by_task[task_id]
        elif sub in self._wide:
            del self._wide[sub]
        else:
            return
        self._count -= 1

    @property
    def subscriber_count(self) -> int:
        return self._count

    async def close(self) -> None:
        for sub in [*self._wide, *(s for f in self._by_task.values() for s in f.subs)]:
            sub.close()
