"""Outputs: InfluxDB line protocol, the durable outbox and the writers that drain it."""
