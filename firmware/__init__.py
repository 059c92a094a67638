"""shopwatt sensor firmware (MicroPython, ESP32): pure modules plus a thin hardware layer.

Every module except `hal_esp32` imports nothing from `machine` or `network`, so the same
code runs on the chip, under CPython (tests, the agent's virtual shop) and under the
MicroPython WebAssembly port (tests). Modules import each other relatively, so the
package works wherever it is mounted (`/lib/firmware` on the chip).
"""

VERSION = "0.1.0"
