"""Which process owns a RUNNING run, and whether that process is still alive.

A kernel killed while it trains (SIGKILL, out of memory, a crash, the machine switched off)
never ends its run: MLflow keeps it RUNNING forever and ``--resume`` (which continues
interrupted, KILLED runs) cannot find it. So a run records its owner when it opens
(:func:`owner_tags`): the host name, the process id and the process's start time (a pid reused
by a later process is not mistaken for the owner), and on Linux the boot, the pid namespace and
the machine id. :func:`mark_dead_runs` ends as KILLED, with the reason in a tag, the RUNNING runs
of a store whose owner ran on this machine and is gone; ``train()`` calls it before it looks for
a run to resume.

Only what can be checked is judged. A run owned by another host (a shared tracking server, a
store on a network drive), by another pid namespace on this host (a container sharing its host
name), or recorded without an owner is left alone. On Linux the start time is read from
``/proc/<pid>/stat`` (psutil is not a dependency); elsewhere psutil is used when it is installed,
and otherwise only a pid that no longer exists counts as dead (``os.kill(pid, 0)``; never on
Windows, where that call would end the process).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .tracking import TAG

OWNER = f"{TAG}owner."
HOST, PID, STARTED = f"{OWNER}host", f"{OWNER}pid", f"{OWNER}started"
BOOT, PIDNS, MACHINE = f"{OWNER}boot", f"{OWNER}pidns", f"{OWNER}machine"
KILLED_BECAUSE = f"{TAG}killed_because"
"""The tag saying why :func:`mark_dead_runs` ended a run."""

ALIVE, DEAD, UNKNOWN = "alive", "dead", "unknown"

_PROC = Path("/proc")


@dataclass(frozen=True)
class Owner:
    """The process that opened a run, as recorded in its ``aimodel.owner.*`` tags.

    Attributes
    ----------
    host : str
        ``socket.gethostname()``.
    pid : int
    started : str
        The process's start time: clock ticks after boot on Linux, psutil's ``create_time``
        elsewhere, empty when neither can be read.
    boot, pidns, machine : str
        Linux only (empty elsewhere): ``/proc/sys/kernel/random/boot_id``, the pid namespace
        (``/proc/self/ns/pid``) and ``/etc/machine-id``.
    """

    host: str
    pid: int
    started: str = ""
    boot: str = ""
    pidns: str = ""
    machine: str = ""

    @classmethod
    def current(cls) -> Owner:
        """This process."""
        global _current
        pid = os.getpid()
        if _current is None or _current.pid != pid:  # computed once per process (and fork)
            _current = cls(host=socket.gethostname(), pid=pid, started=_start_time(pid) or "",
                           boot=_read(_PROC / "sys/kernel/random/boot_id"),
                           pidns=_link(_PROC / "self/ns/pid"),
                           machine=_read(Path("/etc/machine-id")))
        return _current

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> Owner | None:
        """The owner recorded in a run's tags, or ``None`` (a run recorded without one)."""
        host, pid = tags.get(HOST), tags.get(PID, "")
        if not host or not pid.isdigit():
            return None
        return cls(host=host, pid=int(pid), started=tags.get(STARTED, ""),
                   boot=tags.get(BOOT, ""), pidns=tags.get(PIDNS, ""),
                   machine=tags.get(MACHINE, ""))

    def tags(self) -> dict[str, str]:
        """The run tags that record this owner."""
        return {HOST: self.host, PID: str(self.pid), STARTED: self.started, BOOT: self.boot,
                PIDNS: self.pidns, MACHINE: self.machine}

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"

    def state(self) -> str:
        """``"alive"``, ``"dead"`` or ``"unknown"`` (another machine, another pid namespace, or
        nothing on this platform to tell)."""
        me = Owner.current()
        if self.host != me.host:
            return UNKNOWN
        if self.boot or me.boot:  # Linux
            if not (self.boot and me.boot):
                return UNKNOWN
            if self.boot != me.boot:  # this machine rebooted since, or another one of that name
                same_machine = bool(self.machine) and self.machine == me.machine
                return DEAD if same_machine else UNKNOWN
            if self.pidns != me.pidns:
                return UNKNOWN
            started = _start_time(self.pid)
            if started is None:
                return DEAD
            return ALIVE if not self.started or started == self.started else DEAD
        return _state_elsewhere(self)


_current: Owner | None = None


def owner_tags() -> dict[str, str]:
    """The ``aimodel.owner.*`` tags naming this process as the owner of a run.

    Set them when a run opens, and again, before it is marked RUNNING, when a run is reopened
    (``--resume``): the process that resumes it owns it from then on.
    """
    return Owner.current().tags()


def mark_dead_runs(store: Any, *, limit: int = 1000) -> list[str]:
    """End as KILLED the RUNNING runs of ``store`` whose owner ran on this host and is gone.

    Each such run gets the tag ``aimodel.killed_because`` saying which process died and who
    noticed; its checkpoints stay, so ``--resume`` continues it. Runs with an owner on another
    host, in another pid namespace, or with no recorded owner are left as they are.

    Parameters
    ----------
    store : Store
    limit : int
        At most this many RUNNING runs are looked at.

    Returns
    -------
    list of str
        The ids of the runs marked KILLED.
    """
    me = Owner.current()
    where = "attributes.status = 'RUNNING'"
    if "'" not in me.host and "`" not in me.host:
        where += f" and tags.`{HOST}` = '{me.host}'"
    marked = []
    for run in store.search_runs(where, max_results=limit):
        owner = Owner.from_tags(run.data.tags)
        if owner is None or owner == me or owner.state() != DEAD:
            continue
        latest = store.run(run.info.run_id)  # it may have been resumed or ended meanwhile
        if latest.info.status != "RUNNING" or Owner.from_tags(latest.data.tags) != owner:
            continue
        now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        store.set_tags(run.info.run_id, {
            KILLED_BECAUSE: f"its process ({owner.describe()}) ended while the run was RUNNING; "
                            f"marked KILLED by pid {me.pid} at {now}"})
        store.end_run(run.info.run_id, "KILLED")
        marked.append(run.info.run_id)
    return marked


def _start_time(pid: int) -> str | None:
    """When process ``pid`` started (an opaque token), or ``None`` when it is not running."""
    stat = _PROC / str(pid) / "stat"
    if _PROC.is_dir():
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        # fields[0] is the state (field 3 of proc(5)); field 22, starttime, is fields[19]
        return None if fields[0] in ("Z", "X", "x") else fields[19]
    psutil = _psutil()
    if psutil is None:
        return ""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return f"{process.create_time():.3f}"
    except psutil.NoSuchProcess:
        return None
    except psutil.Error:
        return ""


def _state_elsewhere(owner: Owner) -> str:
    """Without ``/proc``: psutil's start time when installed, else whether the pid exists."""
    if _psutil() is not None:
        started = _start_time(owner.pid)
        if started is None:
            return DEAD
        return ALIVE if not owner.started or not started or started == owner.started else DEAD
    if os.name != "posix":
        return UNKNOWN
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return DEAD
    except OSError:  # PermissionError: a process of another user holds that pid
        return ALIVE
    return ALIVE


def _psutil() -> Any:
    try:
        import psutil
    except ImportError:
        return None
    return psutil


def _read(path: Path) -> str:
    with contextlib.suppress(OSError):
        return path.read_text().strip()
    return ""


def _link(path: Path) -> str:
    with contextlib.suppress(OSError):
        return os.readlink(path)
    return ""
