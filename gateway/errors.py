"""One exception root for everything shopwatt reports to a user."""


class ShopwattError(Exception):
    """Base of all errors shopwatt raises on purpose; the message is for the user."""


class ConfigError(ShopwattError):
    """shop.toml (or another config file) is unreadable or invalid."""


class InputError(ShopwattError):
    """An input file (readings.csv, jobs.csv, ...) has a bad row; nothing was written."""


class LedgerError(ShopwattError):
    """The ledger refused an operation (closed period, unknown month, ...)."""


class ProvisionError(ShopwattError):
    """Provisioning refused: a bad option or file, or a provisioning state it cannot trust."""


class ServerError(ShopwattError, RuntimeError):
    """A local server (mosquitto, influxd) could not be found, started or queried."""


class OutputError(ShopwattError):
    """An output file may not or cannot be written (the ledger, an existing file, no folder)."""
