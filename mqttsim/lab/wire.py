"""Which bytes on the wire belong to which QoS: MQTT bytes plus their share of TCP/IP.

The method, kept simple enough to check by hand:

* An MQTT packet belongs to a QoS if it is a PUBLISH of that QoS or one of its
  acknowledgements (PUBACK: 1; PUBREC, PUBREL, PUBCOMP: 2). CONNECT, PINGREQ, SUBSCRIBE and
  friends belong to no QoS. This is how ``Results.summary()`` counts ``mqtt_bytes``.
* Each sender's MQTT packets on a connection are one byte stream, in the order the table
  lists them, so packet k occupies stream bytes [sum of earlier sizes, + its size).
* Every segment that carries stream bytes (``data``, or a ``datagram``), retransmissions and
  lost ones included, is charged in full (payload + TCP/IP header) to the packets whose bytes
  it carries, in proportion to how many of its payload bytes each one has. A PUBLISH sent
  alone in a segment thus costs its size + 52 bytes (IP, TCP and the timestamp option Linux
  sends by default), and once more for each retransmission.
* Segments without payload (SYN, pure ACKs, FIN, RST) are not charged to any QoS: TCP sends
  them whatever the QoS, and splitting them would need a model of delayed ACKs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..scenario.results import QOS_OF_ACK
from ._base import results_only

PAYLOAD_KINDS = ("data", "datagram")


def packet_qos(packets: pd.DataFrame) -> pd.Series:
    """The QoS each MQTT packet belongs to (NaN: CONNECT, PINGREQ, SUBSCRIBE...)."""
    publish = pd.to_numeric(packets["qos"], errors="coerce")
    return publish.where(packets["type"] == "PUBLISH",
                         packets["type"].map(QOS_OF_ACK).astype(float))


def wire_bytes(res: Any) -> pd.DataFrame:
    """``res.packets`` with two more columns: ``qos_of`` (packet_qos) and ``wire_bytes``,
    the bytes of the segments that carried it, shared by payload bytes (module docstring).
    Summed over all packets, ``wire_bytes`` is the bytes of every payload-carrying segment."""
    res = results_only(res, "wire_bytes")
    packets, segments = res.packets, res.segments
    charged = np.zeros(len(packets))
    carrying = segments[segments["kind"].isin(PAYLOAD_KINDS)
                        & (segments["payload_bytes"] > 0)]
    seg_groups = dict(iter(carrying.groupby(["conn", "src"], sort=False)))
    for key, rows in packets.groupby(["conn", "src"], sort=False).indices.items():
        segs = seg_groups.get(key)
        if segs is None:
            continue
        sizes = packets["bytes"].to_numpy()[rows].astype(float)
        ends = np.cumsum(sizes)
        starts = ends - sizes
        payload = segs["payload_bytes"].to_numpy(dtype=float)
        if (segs["kind"] == "datagram").all():  # one datagram per packet, no seq numbers
            seq = np.cumsum(payload) - payload
        else:
            seq = segs["seq"].to_numpy(dtype=float)
        total = segs["bytes"].to_numpy(dtype=float)
        first = np.searchsorted(ends, seq, side="right")
        last = np.searchsorted(starts, seq + payload, side="left")
        # One (segment, packet) pair per packet a segment overlaps, all at once.
        counts = np.maximum(last - first, 0)
        seg = np.repeat(np.arange(len(segs)), counts)
        pkt = first[seg] + np.arange(len(seg)) - np.repeat(np.cumsum(counts) - counts, counts)
        overlap = (np.minimum(ends[pkt], seq[seg] + payload[seg])
                   - np.maximum(starts[pkt], seq[seg]))
        np.add.at(charged, rows[pkt], overlap / payload[seg] * total[seg])
    out = packets.copy()
    out["qos_of"] = packet_qos(packets)
    out["wire_bytes"] = charged
    return out


def bytes_by_qos(res: Any) -> pd.DataFrame:
    """Per QoS (as published): delivered copies, MQTT bytes, wire bytes and both per copy.

    ``copies`` counts every copy a subscriber got of an expected message (duplicates too),
    as ``Results.summary()`` does for ``bytes_per_copy``."""
    res = results_only(res, "bytes_by_qos")
    packets = wire_bytes(res)
    outcomes = res.outcomes[res.outcomes["expected"].astype(bool)]
    rows = []
    for qos in (0, 1, 2):
        mine = packets[packets["qos_of"] == qos]
        sent = int((res.published["qos"] == qos).sum())
        if mine.empty and not sent:
            continue
        copies = int(outcomes.loc[outcomes["qos_pub"] == qos, "copies"].sum())
        mqtt, wire = int(mine["bytes"].sum()), float(mine["wire_bytes"].sum())
        rows.append({"qos": qos, "copies": copies, "mqtt_bytes": mqtt, "wire_bytes": wire,
                     "mqtt_per_copy": mqtt / copies if copies else np.nan,
                     "wire_per_copy": wire / copies if copies else np.nan})
    columns = ["qos", "copies", "mqtt_bytes", "wire_bytes", "mqtt_per_copy", "wire_per_copy"]
    return pd.DataFrame(rows, columns=columns).set_index("qos")


__all__ = ["packet_qos", "wire_bytes", "bytes_by_qos"]
