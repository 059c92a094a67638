"""The virtual shop: machine profiles, job schedules and simulated power for demo and tests."""
