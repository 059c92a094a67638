"""shopwatt gateway: inputs -> engine -> ledger/outbox -> InfluxDB/export."""

__version__ = "0.1.0"
