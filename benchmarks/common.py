"""What every benchmark prints first: the machine, the load, the command."""

from __future__ import annotations

import os
import platform
import sys


def header(data: str) -> str:
    load = os.getloadavg()
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
    return "\n".join(
        [
            f"machine: {platform.node()} | {cpu} | {os.cpu_count()} cores | Python {platform.python_version()}",
            f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
            f"data: {data}",
            f"command: {' '.join([os.path.basename(sys.executable)] + sys.argv)}",
        ]
    )
