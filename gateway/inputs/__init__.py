"""Inputs: each module turns one source (CSV file, MQTT, Modbus) into per-machine readings."""
