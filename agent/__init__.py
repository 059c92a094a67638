"""The virtual shop: machine profiles, schedules, simulated power, and live simulated sensors
(the firmware on a simulated HAL) publishing the real protocol, for demos, tests and load tests.
"""
