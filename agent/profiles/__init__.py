"""Machine profiles as data: one TOML file per kind of machine (see docs/agent.md)."""
