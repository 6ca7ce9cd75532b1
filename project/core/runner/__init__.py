"""The runner: carrying out a plan on a live database.

`migrator` owns the sequence every caller goes through (lock, plan, policy, run); `locks`, `timeouts`,
`topology` (poolers, standbys, Galera), `invalid_indexes`, `unmanaged` (a database with tables but no recorded
revision), `adopt` (`migrate --fake-initial`) and `repair`. Imports inspection, authoring, the history and the
foundation.
"""
