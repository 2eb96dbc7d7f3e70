"""The CPU priority of the suite's ``timing`` tests (tests/conftest.py says why)."""

TIMING_NICE = -10  # CFS weight 9548 against 1024 at nice 0: ~90 % of a contended core
