"""The pure MQTT layer: codec, topic rules and (later) the client and broker engines.

Nothing here does IO, starts threads or reads a clock (see DESIGN.md), so the simulator and
the socket server drive exactly the same code.
"""

from .decoder import Decoder
from .encoder import encode
from .framing import take_packets
from .errors import (InvalidTopic, MalformedPacket, MQTTError, PacketTooLarge, ProtocolError,
                     UnsupportedProtocolVersion)
from .packets import *  # noqa: F401,F403  (the packet classes are the vocabulary of the API)
from .packets import __all__ as _packet_names
from .properties import NO_PROPERTIES, Properties

__all__ = ["Decoder", "encode", "take_packets", "MQTTError", "MalformedPacket", "ProtocolError",
           "PacketTooLarge", "InvalidTopic", "UnsupportedProtocolVersion", "Properties",
           "NO_PROPERTIES", *_packet_names]
