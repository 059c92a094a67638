"""A storage area backed by one file: littlefs on the ESP32, any file system elsewhere."""

from .hal import Area


class FileArea(Area):
    """A file used as a fixed-size area; it grows as slots are first written."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._f = open(path, "r+b")  # noqa: SIM115 - held open for the sensor's lifetime
        except OSError:
            self._f = open(path, "w+b")  # noqa: SIM115

    def read(self, offset: int, n: int) -> bytes:
        """Up to n bytes at offset (fewer past the end of what was written)."""
        self._f.seek(offset)
        return self._f.read(n) or b""

    def write(self, offset: int, data: bytes) -> None:
        """Write and flush: on littlefs the flush is the atomic commit."""
        self._f.seek(offset)
        self._f.write(data)
        self._f.flush()

    def close(self) -> None:
        """Close the file (tests reopen it to simulate a reboot)."""
        self._f.close()
