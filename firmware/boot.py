"""Runs first after every reset: nothing but a short pause for the USB console.

The pause lets `mpremote` interrupt a sensor that resets in a loop (Ctrl-C within 1 s).
"""

import time

time.sleep_ms(1000)
