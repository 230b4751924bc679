"""Not part of the example package: keeps corecall's own test run out of the example's tests.

They test the plugin as installed (through its entry point), so they run in the fresh
virtualenv that tests/test_third_party_plugin.py installs the example into.
"""

collect_ignore = ["tests"]
