"""Messaging: what the agent sends the fleet and how it gets there, online or not.

agent_transport.py      the [broker] config → an MQTT transport with the offline status as last will
connection_watcher.py   one callback per (re)connect and per loss
status_reporter.py      the one persisted state → the retained status and the hello
event_reporter.py       what happened → numbered events (the update table's states mapped to the protocol)
outbox.py, spool.py     publish now, or spool to disk under a byte cap and replay in order
sequence_counter.py     event and telemetry sequence numbers that never repeat across restarts
"""
