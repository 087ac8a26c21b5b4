"""Several GPUs on one machine: ``VIDGEN_GPUS`` and a device of its own for each run.

``VIDGEN_GPUS`` is a count (``2``: devices 0 and 1) or a device list (``0,2``, ``cuda:1``);
unset, it is every GPU this process can see (``CUDA_VISIBLE_DEVICES``, else ``nvidia-smi``).
Entries are numbered as torch numbers them in this process (after ``CUDA_VISIBLE_DEVICES``).
Its length sizes the ``gpu`` pool and the run queue (``instance.py`` writes both into
``dagster.yaml``).

With two devices or more, a process that is about to use CUDA first takes one device for its
lifetime: an exclusive lock on ``VIDGEN_HOME/gpus/<host>/<device>.lock`` (``flock``), then
``CUDA_VISIBLE_DEVICES=<device>`` before CUDA starts, so ``cuda`` in this process is that
card and no other. Runs execute in their process (the in-process executor, and ``vidgen``
commands), so a run keeps one device from its first model to its last; a process that finds
every device taken waits, and says for whom. The operating system drops a lock when its
process ends, however it ends, so a killed run's device is free at once (its ``gpu`` pool
slots are freed by the next ``vidgen`` command or by run monitoring, see ``batch.py``). The
device a run holds is on its ``vidgen/gpu`` tag. Without CUDA (the CPU here) the devices are
simulated: leases, waiting and tags behave the same and the models run on the CPU.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from vidgen_pipeline.core.models import ModelChoiceError
from vidgen_pipeline.core.storage import vidgen_home

GPUS_ENV = "VIDGEN_GPUS"
GPU_TAG = "vidgen/gpu"
WAIT_POLL_S = 1.0

# The device this process holds, and the open lock file that holds it (closing it frees it).
_held: tuple[str, IO] | None = None


def visible_devices() -> list[str]:
    """The GPUs this process can see, as ``CUDA_VISIBLE_DEVICES`` names them (indices or
    UUIDs); without it, ``nvidia-smi``'s count. Never initialises CUDA."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        devices = []
        for entry in (part.strip() for part in listed.split(",")):
            if not entry or entry.startswith("-"):
                break  # CUDA ignores everything from the first invalid entry on
            devices.append(entry)
        return devices
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(n) for n, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def configured_devices() -> list[str]:
    """``VIDGEN_GPUS`` as device names for ``CUDA_VISIBLE_DEVICES`` (see the module doc)."""
    raw = os.environ.get(GPUS_ENV, "").strip()
    visible = visible_devices()
    if not raw:
        return visible

    def name(index: int) -> str:  # torch's index in this process -> the device's own name
        if os.environ.get("CUDA_VISIBLE_DEVICES") is None:
            return str(index)
        if index >= len(visible):
            raise ModelChoiceError(
                f"{GPUS_ENV}={raw}: device {index} is not among CUDA_VISIBLE_DEVICES="
                f"{os.environ['CUDA_VISIBLE_DEVICES']}"
            )
        return visible[index]

    if raw.isdigit():
        return [name(index) for index in range(int(raw))]
    devices = []
    for entry in (part.strip() for part in raw.split(",") if part.strip()):
        number = entry.removeprefix("cuda:")
        if not number.isdigit():
            raise ModelChoiceError(
                f"{GPUS_ENV}={raw}: {entry!r} is not a device; use a count (2) or a list "
                "(0,1 or cuda:0,cuda:1)"
            )
        devices.append(name(int(number)))
    if len(set(devices)) != len(devices):
        raise ModelChoiceError(f"{GPUS_ENV}={raw} names a device twice")
    return devices


def pool_slots() -> int:
    """Slots of the ``gpu`` pool and queued runs at once: one per device, at least one."""
    return max(1, len(configured_devices()))


def held_device() -> str | None:
    """The device this process holds, if any."""
    return _held[0] if _held else None


def hold_device() -> str | None:
    """Before this process first touches CUDA: with two devices or more, take one for good
    (waiting while all are taken) and make it the only one CUDA sees here; with one device
    named in ``VIDGEN_GPUS``, only the latter. Returns the device held, or None."""
    global _held
    if _held is not None:
        _tag_current_run(_held[0])
        return _held[0]
    devices = configured_devices()
    if len(devices) == 1 and os.environ.get(GPUS_ENV, "").strip() not in ("", "1"):
        _use(devices[0])  # one device named: a pin, nothing to share
        return None
    if len(devices) < 2:
        return None
    folder = vidgen_home() / "gpus" / _host()
    folder.mkdir(parents=True, exist_ok=True)
    waiting_said = False
    while True:
        for device in devices:
            handle = _try_lock(folder / f"{_file_name(device)}.lock")
            if handle is None:
                continue
            _held = (device, handle)
            _use(device)
            _say(f"GPU {device} is this process's until it ends ({GPUS_ENV}: {', '.join(devices)})")
            _tag_current_run(device)
            return device
        if not waiting_said:
            _say(f"waiting for a GPU: {_holders(folder, devices)}")
            waiting_said = True
        time.sleep(WAIT_POLL_S)


def release_device() -> None:
    """Give the device back before this process ends (tests, long-lived tools)."""
    global _held
    if _held is not None:
        _held[1].close()
        _held = None


def _try_lock(path: Path) -> IO | None:
    handle = open(path, "a+")  # noqa: SIM115  kept open: the lock lives as long as the file
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    handle.flush()
    return handle


def _holders(folder: Path, devices: list[str]) -> str:
    """``GPU 0: pid 123 since ..., GPU 1: ...`` from what the holders wrote in their files."""
    parts = []
    for device in devices:
        try:
            who = (folder / f"{_file_name(device)}.lock").read_text().strip() or "?"
        except OSError:
            who = "?"
        parts.append(f"GPU {device} held by {who}")
    return "; ".join(parts)


def _use(device: str) -> None:
    """Make ``device`` the one CUDA device of this process (``cuda`` and ``cuda:0`` are it)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        # CUDA started before the lease (not through runtime.cuda_available): too late to hide
        # the other cards, so at least make this one the current device.
        visible = visible_devices()
        torch.cuda.set_device(visible.index(device) if device in visible else int(device))
        return
    os.environ["CUDA_VISIBLE_DEVICES"] = device


def _tag_current_run(device: str) -> None:
    """Put ``vidgen/gpu`` on the run this code runs in (when it runs in one)."""
    context = _current_context()
    if context is None or context.run.tags.get(GPU_TAG) == device:
        return
    context.instance.add_run_tags(context.run_id, {GPU_TAG: device})


def _say(message: str) -> None:
    context = _current_context()
    if context is not None:
        context.log.info(message)
    else:
        print(f"vidgen: {message}", file=sys.stderr, flush=True)


def _current_context():
    from dagster import OpExecutionContext
    from dagster._core.errors import DagsterInvariantViolationError

    try:
        return OpExecutionContext.get()
    except DagsterInvariantViolationError:
        return None


def _host() -> str:
    return "".join(c if c.isalnum() or c in "-._" else "_" for c in socket.gethostname())


def _file_name(device: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in device)
