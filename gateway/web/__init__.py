"""The shop's own web page (`shopwatt web`): floor, jobs, month, health, users (docs/web.md).

Starlette, uvicorn and Jinja2 load only here, through `shopwatt web`: `shopwatt run` never
imports this package.
"""
