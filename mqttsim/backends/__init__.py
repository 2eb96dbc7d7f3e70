"""Backends that run a scenario: ``sim`` (SimPy), ``sockets`` (asyncio), ``kernel`` (Linux TCP).

Each drives the same protocol engines and the same world; each returns the same ``Results``.
"""
