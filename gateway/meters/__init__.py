"""Power meter register maps: one TOML data file per meter model, validated at load."""
