"""The simulated world on any clock: network graph, hosts, transports, recorder.

Backends (``mqttsim.backends``) supply the clock and the IO; nothing here knows whether
time is simulated (SimPy) or real (asyncio).
"""
