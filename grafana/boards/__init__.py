"""The four dashboards, one module each; `build(currency)` returns the SDK builder."""
