"""``Results`` of a kernel run: the common tables, plus ``tcp_info`` and a real pcap."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from ...scenario.results import Results, from_recording
from .packets import TCP_INFO_COLUMNS, write_raw_pcap


class KernelResults(Results):
    """``Results`` whose ``to_pcap`` writes the kernels' own packets (real IPv4/TCP headers,
    as the emulator read them from the sender's TUN, dropped ones included) and with one
    more table, ``tcp_info``: the kernel's TCP_INFO of each connection, sampled during the
    run (``retransmits``/``total_retrans``, ``rtt``/``rttvar``/``rto`` in seconds,
    ``snd_cwnd`` in segments)."""

    @cached_property
    def tcp_info(self) -> pd.DataFrame:
        """TCP_INFO samples: one row per connection end and sample (``TCP_INFO_COLUMNS``)."""
        return self._build("tcp_info")

    def to_pcap(self, path: str | os.PathLike) -> int:
        if self._raw_packets is None:
            raise ValueError("this run kept no packets: run it with capture=True")
        return write_raw_pcap(path, self._raw_packets)

    def to_csv(self, directory: str | os.PathLike) -> list[Path]:
        written = super().to_csv(directory)
        path = Path(directory) / "tcp_info.csv"
        self.tcp_info.to_csv(path, index=False)
        return written + [path]


def kernel_results(recording: Any) -> KernelResults:
    """Tables from a ``KernelRecording``."""
    base = from_recording(recording, "kernel")
    tables = dict(base.__dict__["_unbuilt"])
    tables["tcp_info"] = lambda: pd.DataFrame(recording.tcp_info, columns=list(TCP_INFO_COLUMNS))
    res = KernelResults(base.scenario, base.seed, "kernel", tables, base.broker_events,
                        base._payloads, base.stats)
    res._raw_packets = recording.raw_packets if recording.recorder.capture else None
    res.stats.update(max_lag=recording.max_lag, congestion=recording.congestion,
                     addresses=recording.addresses,
                     **{f"emulator_{k}": v for k, v in recording.emulator.items()
                        if k != "hosts"})
    return res
