"""`python -m agent`: see agent.cli."""

from agent.cli import main

main()
