"""A submit batch's messages kept hidden a short lease at a time while they are handled."""

import threading
import time
from datetime import timedelta

from sora_relay.adapters.messaging import KeptHidden


class Queue:
    def __init__(self) -> None:
        self.hidden: list[tuple[list[str], timedelta]] = []
        self.lock = threading.Lock()

    def hide_for(self, receipt_handles: list[str], delay: timedelta) -> None:
        with self.lock:
            self.hidden.append((list(receipt_handles), delay))


def test_a_batch_is_hidden_for_its_lease_at_once_and_renewed_while_it_is_handled() -> None:
    queue = Queue()
    with KeptHidden(queue, ["a", "b"], timedelta(seconds=0.1)):  # type: ignore[arg-type]
        time.sleep(0.35)
    assert queue.hidden[0] == (["a", "b"], timedelta(seconds=0.1))
    assert len(queue.hidden) >= 3


def test_a_message_handled_is_never_renewed_so_its_own_retry_delay_stands() -> None:
    queue = Queue()
    with KeptHidden(queue, ["a", "b"], timedelta(seconds=0.1)) as hidden:  # type: ignore[arg-type]
        hidden.done("a")
        time.sleep(0.25)
    assert all(handles == ["b"] for handles, _ in queue.hidden[1:])


def test_nothing_is_renewed_once_every_message_is_handled() -> None:
    queue = Queue()
    with KeptHidden(queue, ["a"], timedelta(seconds=0.1)) as hidden:  # type: ignore[arg-type]
        hidden.done("a")
        time.sleep(0.25)
    assert len(queue.hidden) == 1
