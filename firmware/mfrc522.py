"""An NXP MFRC522 card reader on SPI: the UID of the ISO 14443-A card on it (4, 7 or 10 bytes).

Only what reading a UID needs: WUPA, anticollision and select through the cascade levels,
then HLTA. The SPI device comes from the hardware layer, so the fake layer can stand in a
simulated chip with a card (hal_fake.FakeMfrc522). Written here rather than taken from the
usual MicroPython drivers: they read one cascade level only (4-byte UIDs; a 7-byte NTAG or
DESFire UID comes back cut), and build their own SPI bus from `machine`.
"""

from .hal import SpiDevice

# Registers (datasheet section 9.2) and the bits used.
_COMMAND = 0x01
_COM_IRQ = 0x04
_ERROR = 0x06
_FIFO_DATA = 0x09
_FIFO_LEVEL = 0x0A
_BIT_FRAMING = 0x0D
_MODE = 0x11
_TX_CONTROL = 0x14
_TX_ASK = 0x15
_T_MODE = 0x2A
_T_PRESCALER = 0x2B
_T_RELOAD_H = 0x2C
_T_RELOAD_L = 0x2D
_VERSION = 0x37
_IDLE = 0x00
_TRANSCEIVE = 0x0C
_SOFT_RESET = 0x0F
_START_SEND = 0x80
_FLUSH = 0x80
_RX_IRQ = 0x20
_IDLE_IRQ = 0x10
_TIMER_IRQ = 0x01
_ERR_FATAL = 0x13  # BufferOvfl, ParityErr, ProtocolErr
_ERR_COLL = 0x08
_POLLS = 400  # ComIrq reads before giving up; the chip's own 5 ms timer ends it sooner

# ISO 14443-3 type A commands.
WUPA = 0x52  # wakes idle and halted cards: a card left on the reader answers every poll
HLTA = 0x50
SEL = (0x93, 0x95, 0x97)  # cascade levels 1..3
CASCADE_TAG = 0x88
_SAK_MORE = 0x04  # the UID continues on the next cascade level


class ReaderError(Exception):
    """The reader chip does not answer as an MFRC522 (wiring, power, wrong pins)."""


def crc_a(data: bytes) -> bytes:
    """ISO 14443-3 CRC_A of data, low byte first, as it goes on air."""
    crc = 0x6363
    for b in data:
        b ^= crc & 0xFF
        b = (b ^ (b << 4)) & 0xFF
        crc = (crc >> 8) ^ (b << 8) ^ (b << 3) ^ (b >> 4)
    return bytes((crc & 0xFF, crc >> 8))


class Mfrc522:
    """The reader chip behind one SPI device."""

    def __init__(self, spi: SpiDevice) -> None:
        self._spi = spi
        self._out = bytearray(2)
        self._in = bytearray(2)

    def _read(self, reg: int) -> int:
        self._out[0] = 0x80 | (reg << 1)
        self._out[1] = 0
        self._spi.transfer(self._out, self._in)
        return self._in[1]

    def _write(self, reg: int, value: int) -> None:
        self._out[0] = reg << 1
        self._out[1] = value
        self._spi.transfer(self._out, self._in)

    def init(self) -> None:
        """Reset the chip and switch the antenna on; ReaderError when nothing answers."""
        self._write(_COMMAND, _SOFT_RESET)
        version = self._read(_VERSION)
        # 0x91/0x92: MFRC522 v1/v2; 0x88: FM17522; 0x12, 0xB2: clones on cheap RC522 boards.
        if version not in (0x91, 0x92, 0x88, 0x12, 0xB2):
            raise ReaderError(f"no MFRC522 on the SPI bus (version register 0x{version:02X})")
        # Timer: 13.56 MHz / (2 * 0xA9 + 1) = 40 kHz ticks, 200 of them = 5 ms for an answer
        # (a card answers within a few hundred us). The wait blocks the event loop: with no
        # card on the reader, each poll costs about this long.
        self._write(_T_MODE, 0x80)
        self._write(_T_PRESCALER, 0xA9)
        self._write(_T_RELOAD_H, 0x00)
        self._write(_T_RELOAD_L, 0xC8)
        self._write(_TX_ASK, 0x40)  # 100 % ASK modulation
        self._write(_MODE, 0x3D)  # CRC preset 0x6363 (ISO 14443-3)
        self._write(_TX_CONTROL, self._read(_TX_CONTROL) | 0x03)  # antenna on

    def transceive(self, frame: bytes, last_bits: int = 0) -> bytes | None:
        """Send frame to the card; its answer, or None (no card, timeout, garbled, collision).

        last_bits: bits of the last byte to send (7 for the short frame of WUPA), 0 = all 8.
        """
        self._write(_COMMAND, _IDLE)
        self._write(_COM_IRQ, 0x7F)  # clear every interrupt bit
        self._write(_FIFO_LEVEL, _FLUSH)
        for b in frame:
            self._write(_FIFO_DATA, b)
        self._write(_BIT_FRAMING, last_bits)
        self._write(_COMMAND, _TRANSCEIVE)
        self._write(_BIT_FRAMING, _START_SEND | last_bits)
        irq = 0
        for _ in range(_POLLS):
            irq = self._read(_COM_IRQ)
            if irq & (_RX_IRQ | _IDLE_IRQ | _TIMER_IRQ):
                break
        self._write(_BIT_FRAMING, last_bits)
        if not irq & (_RX_IRQ | _IDLE_IRQ) or irq & _TIMER_IRQ:
            return None
        # Two cards answering at once: no UID this poll (the tap is read when one is left).
        if self._read(_ERROR) & (_ERR_FATAL | _ERR_COLL):
            return None
        n = self._read(_FIFO_LEVEL) & 0x7F
        return bytes(self._read(_FIFO_DATA) for _ in range(n))

    def read_uid(self) -> bytes | None:
        """The UID of the card on the reader, or None when there is none (or not one clearly).

        The card is halted afterwards; WUPA wakes it again at the next poll, so a card left
        on the reader reads every time (the caller decides what a new tap is).
        """
        atqa = self.transceive(bytes((WUPA,)), 7)
        if atqa is None or len(atqa) != 2:
            return None
        uid = b""
        for sel in SEL:
            part = self.transceive(bytes((sel, 0x20)))
            if part is None or len(part) != 5 or part[0] ^ part[1] ^ part[2] ^ part[3] != part[4]:
                return None
            frame = bytes((sel, 0x70)) + part
            sak = self.transceive(frame + crc_a(frame))
            if sak is None or len(sak) != 3 or crc_a(sak[:1]) != sak[1:]:
                return None
            if not sak[0] & _SAK_MORE:
                self.transceive(bytes((HLTA, 0)) + crc_a(bytes((HLTA, 0))))
                return uid + part[:4]
            if part[0] != CASCADE_TAG:
                return None
            uid += part[1:4]
        return None  # a fourth cascade level does not exist


def uid_hex(uid: bytes) -> str:
    """A UID as the protocol writes it: uppercase hex, two digits per byte."""
    return "".join(f"{b:02X}" for b in uid)
