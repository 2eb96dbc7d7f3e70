"""Reusable helpers for tests that talk to real programs (mosquitto, its clients) over loopback.

Import as ``support.mosquitto`` / ``support.relay``: pytest runs with ``tests`` on ``sys.path``
(``pythonpath = ["tests"]`` in pyproject's ``[tool.pytest.ini_options]``).
"""
