"""The rolling-deploy test's application (tests/test_rolling_deploy.py, bench/rolling.py): one table of items,
served in two releases.

Release 1 writes and reads items.legacy; release 2 no longer uses it and writes items.note instead. The history
takes the schema across in two phases: 0002 adds note (expand: release 1 keeps working), 0003 drops legacy
(contract: release 1 breaks). Release 1's code carries 0001 only (the test serves it from a copy of
migrations/ without 0002 and 0003), release 2's all three. migrations/env.py and script.py.mako are links to
the project's own.
"""
