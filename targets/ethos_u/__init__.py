"""Helpers shared by the Ethos-U targets (ethos-u55-128, ethos-u65-256): their options, check, operator
placement and plan; each target folder binds them to its accelerator (target.toml)."""
