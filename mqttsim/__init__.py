"""mqttsim: a lab for learning and measuring MQTT.

The codec and protocol engines live in ``mqttsim.protocol`` (pure: no IO, no clock); the
simulator, the socket server and the notebook helpers are built on top of them.
"""

__version__ = "0.1.0"
