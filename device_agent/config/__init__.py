"""Configuration: `agent.toml` + `EDGEML_AGENT_*` variables → a checked, typed `AgentConfig`, and the
commented template `edgeml-agent init` prints.

    agent_config.py     the schema (every key: type, default, variable, description) and load_config
    config_template.py  chosen values → a complete, commented agent.toml
"""
