"""The update path: a signed desired state from the fleet (or a local artifact) → a verified model committed
in one of two slots, or refused, or rolled back — one transition table, persisted in one state file.

    lifecycle.py        the table: states, events, (state, event) → state
    installer.py        drives it: persist the next state, run its step, repeat (Installer)
    update_steps.py     the step of each state: decide, download, verify, copy into the slot, self-test
    update_worker.py    MQTT messages → the table's events, and the chunk download (UpdateWorker)
    agent_state.py      the state's records; state_store.py its one file; state_migration.py older agents' files
    downloader.py, slots.py, admission.py, self_test.py, rebuild_state.py, install_failure.py,
    install_result.py, crash_hook.py   the pieces the steps use
"""
