"""The ``kernel`` backend: scenarios over Linux's own TCP, hosts in network namespaces joined
by a user-space emulator of the scenario's links (the same ``mqttsim.netmodel.link``)."""

from __future__ import annotations

from typing import Any

from .netns import KernelBackendUnavailable, list_namespaces, missing_requirement, require

__all__ = ["run_on_kernel", "KernelBackendUnavailable", "missing_requirement", "require",
           "list_namespaces"]


def run_on_kernel(scenario: Any, seed: int = 0, capture: bool = True, *,
                  time_scale: float = 1.0, broker_cmd: str | None = None) -> Any:
    """``run(scenario, seed, backend="kernel")``: a ``KernelResults``."""
    from .results import kernel_results
    from .runner import check_kernel_run, record_on_kernel
    check_kernel_run(scenario, time_scale)
    require()
    return kernel_results(record_on_kernel(scenario, seed, capture, broker_cmd))
