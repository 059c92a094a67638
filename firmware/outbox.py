"""What to publish next: a reading in RAM on the fast path, the flash ring otherwise.

While the broker is reachable and nothing is waiting, a new reading stays in RAM and is
sent at once (no flash write). Everything else goes through the ring, which keeps the
order: a reading in RAM is always older than anything in the ring, and when the link
drops with it unacknowledged it is put back in FRONT of the ring.
"""

from .ring import Ring


class Outbox:
    """Readings waiting for a PUBACK, oldest first."""

    def __init__(self, ring: Ring) -> None:
        self.ring = ring
        self.ram: bytes | None = None
        self.online = False

    def __len__(self) -> int:
        return len(self.ring) + (0 if self.ram is None else 1)

    def put(self, payload: bytes) -> None:
        """Queue a new reading."""
        if self.online and self.ram is None and len(self.ring) == 0:
            self.ram = payload
        else:
            self.ring.push(payload)

    def next(self) -> bytes | None:
        """The oldest reading to send (the same one until done() is called)."""
        return self.ram if self.ram is not None else self.ring.peek()

    def done(self) -> None:
        """The reading from next() was acknowledged by the broker."""
        if self.ram is not None:
            self.ram = None
        else:
            self.ring.pop()

    def link_up(self) -> None:
        """The broker accepted our connection."""
        self.online = True

    def link_down(self) -> bool:
        """The connection is gone; True when the ring head moved back (persist it now)."""
        self.online = False
        if self.ram is None:
            return False
        payload = self.ram
        self.ram = None
        return self.ring.unshift(payload)
