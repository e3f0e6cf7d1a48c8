"""CPU accounting per process for the benchmarks, read from /proc (Linux).

A :class:`CpuMeter` samples, in CPU seconds: the run workers, the test bed (the stack and
its stand-ins), PostgreSQL (the postmaster, its live backends, and the backends it has
reaped: dagster-postgres opens a connection per query in run workers, so most backends live
for one statement), this process, and the whole machine. The machine's busy time minus the
named processes is what everything else on the machine used in the meantime (other work
sharing the cores), so a figure can say what it ran beside.

PostgreSQL is counted server-wide (``postgres``), and apportioned to a database
(``postgres_db``): a thread watches the backends every 50 ms, notes each one's database
(its process title) and CPU, and the server's CPU is split between this database and the
others in the proportion watched. Backends that live less than 50 ms go unseen; the split
assumes they are shared alike.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command may hold spaces and parentheses: the fields start after the last ')'
    return text[text.rindex(")") + 2 :].split()


def process_cpu_s(pid: int, children: bool = False) -> float:
    """User + system seconds of ``pid`` (all its threads); with ``children``, plus those of
    the children it has reaped."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    # fields[0] is field 3 (state): utime is field 14, stime 15, cutime 16, cstime 17
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _TICK


def machine_cpu_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the machine since boot, all cores."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return 0.0, 0.0
    values = [int(v) for v in first[:8]]
    user, nice, system, idle, iowait, irq, softirq, steal = values + [0] * (8 - len(values))
    busy = user + nice + system + irq + softirq + steal
    return busy / _TICK, (busy + idle + iowait) / _TICK


def postmaster_pid() -> int | None:
    """The PostgreSQL server's main process on this machine, if one is visible: a
    ``postgres`` process whose parent is not one."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or _comm(int(entry.name)) != "postgres":
            continue
        fields = _stat(int(entry.name))
        if fields is not None and _comm(int(fields[1])) != "postgres":
            return int(entry.name)
    return None


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _children(parent: int) -> Iterable[int]:
    try:  # where the kernel lists them (CONFIG_PROC_CHILDREN), else a scan of /proc
        listed = Path(f"/proc/{parent}/task/{parent}/children").read_text()
    except OSError:
        listed = None
    if listed is not None:
        yield from (int(pid) for pid in listed.split())
        return
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and fields[1] == str(parent):
                yield int(entry.name)


def postgres_cpu_s(postmaster: int | None) -> float:
    """The server's CPU seconds: the postmaster with its reaped backends, plus live ones."""
    if postmaster is None:
        return 0.0
    total = process_cpu_s(postmaster, children=True)
    return total + sum(process_cpu_s(pid) for pid in _children(postmaster))


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds so far, per named group, and the machine's busy and total seconds."""

    groups: Mapping[str, float]
    machine_busy: float
    machine_total: float


class BackendWatch:
    """A thread noting, per live PostgreSQL backend, its database and its latest CPU."""

    def __init__(self, postmaster: int, database: str, interval_s: float = 0.05) -> None:
        self.postmaster, self.database, self.interval_s = postmaster, database, interval_s
        #: (pid, start time): (this database's, latest CPU s)
        self._seen: dict[tuple[int, str], tuple[bool, float]] = {}
        self._titles: dict[tuple[int, str], bool] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pg-watch", daemon=True)
        self._thread.start()

    def _ours(self, pid: int, started: str) -> bool | None:
        key = (pid, started)
        if key not in self._titles:
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                return None
            # "postgres: 15/main: user database host(port) state"
            self._titles[key] = f" {self.database} ".encode() in title.replace(b"\0", b" ")
        return self._titles[key]

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            for pid in _children(self.postmaster):
                fields = _stat(pid)
                if fields is None:
                    continue
                started = fields[19]  # field 22: start time, so a reused pid is another key
                ours = self._ours(pid, started)
                if ours is not None:
                    cpu = (int(fields[11]) + int(fields[12])) / _TICK
                    with self._lock:
                        self._seen[(pid, started)] = (ours, cpu)

    def totals(self) -> tuple[float, float]:
        """CPU seconds watched so far: (this database's backends, the others')."""
        with self._lock:
            ours = sum(cpu for mine, cpu in self._seen.values() if mine)
            others = sum(cpu for mine, cpu in self._seen.values() if not mine)
        return ours, others

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class CpuMeter:
    """Samples the named process groups; ``delta(a, b)`` is what each used in between.

    With ``database``, PostgreSQL's CPU is also apportioned to that database
    (``postgres_db``; see :class:`BackendWatch`)."""

    def __init__(
        self, groups: Mapping[str, Iterable[int]], postgres: bool = True, database: str = ""
    ) -> None:
        self.groups = {name: list(pids) for name, pids in groups.items()}
        self.postmaster = postmaster_pid() if postgres else None
        self.watch = (
            BackendWatch(self.postmaster, database)
            if database and self.postmaster is not None
            else None
        )

    def sample(self) -> CpuSample:
        groups = {name: sum(process_cpu_s(p) for p in pids) for name, pids in self.groups.items()}
        groups["harness"] = process_cpu_s(os.getpid())
        if self.postmaster is not None:
            groups["postgres"] = postgres_cpu_s(self.postmaster)
        if self.watch is not None:
            groups["pg_watched_ours"], groups["pg_watched_others"] = self.watch.totals()
        busy, total = machine_cpu_s()
        return CpuSample(groups, busy, total)

    def close(self) -> None:
        if self.watch is not None:
            self.watch.close()

    @staticmethod
    def delta(before: CpuSample, after: CpuSample) -> dict[str, float]:
        """CPU seconds per group between two samples; ``other`` is the rest of the machine,
        ``machine_busy`` all of it, ``cores_busy`` the average number of busy cores."""
        out = {
            name: round(after.groups.get(name, 0.0) - before.groups.get(name, 0.0), 2)
            for name in after.groups
        }
        ours, others = out.pop("pg_watched_ours", None), out.pop("pg_watched_others", None)
        if ours is not None and others is not None and "postgres" in out:
            share = ours / (ours + others) if ours + others > 0 else 1.0
            out["postgres_db"] = round(out["postgres"] * share, 2)
            out["postgres_db_share"] = round(share, 3)
        busy = after.machine_busy - before.machine_busy
        wall_cores = after.machine_total - before.machine_total
        out["machine_busy"] = round(busy, 2)
        named = ("workers", "stack", "harness", "postgres")
        out["other"] = round(busy - sum(out.get(k, 0.0) for k in named), 2)
        cores = os.cpu_count() or 1
        out["cores_busy"] = round(cores * busy / wall_cores, 2) if wall_cores > 0 else 0.0
        return out
