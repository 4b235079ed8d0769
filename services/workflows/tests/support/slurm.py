"""A real one-node Slurm cluster (Debian's slurm-wlm + munge) from a private folder.

munged, slurmctld and slurmd run as subprocesses on free loopback ports with a private
slurm.conf (``SLURM_CONF``) and munge socket; nothing is installed and nothing outside the
folder is written. Stopped by their pids, in reverse order. Facts: recipes/batch-systems.md.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from vre_common.testing import free_port

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo")


def missing_binaries() -> list[str]:
    """Slurm/munge programs not installed here (``make test`` installs them where it may)."""
    return [b for b in BINARIES if shutil.which(b) is None]


@dataclass
class SlurmCluster:
    """A running one-node cluster: its folder, its config, and the environment to reach it."""

    root: Path
    ctld_port: int
    slurmd_port: int
    cpus: int = 2
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """Environment for Slurm's client commands (sbatch, squeue …)."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    @property
    def munge_socket(self) -> Path:
        return self.root / "munge" / "munge.socket"

    def write_config(self) -> None:
        r = self.root
        for sub in ("munge", "run", "log", "state", "spool"):
            (r / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(r / "munge", 0o755)  # other users' jobs reach the socket
        key = r / "munge" / "munge.key"
        if not key.exists():
            key.write_bytes(secrets.token_bytes(1024))
            os.chmod(key, 0o600)
        self.conf.write_text(
            "\n".join(
                [
                    "ClusterName=vre",
                    "SlurmctldHost=localhost(127.0.0.1)",
                    "SlurmUser=root",
                    f"SlurmctldPort={self.ctld_port}",
                    f"SlurmdPort={self.slurmd_port}",
                    "AuthType=auth/munge",
                    f"AuthInfo=socket={self.munge_socket}",
                    f"StateSaveLocation={r}/state",
                    f"SlurmdSpoolDir={r}/spool",
                    f"SlurmctldPidFile={r}/run/slurmctld.pid",
                    f"SlurmdPidFile={r}/run/slurmd.pid",
                    f"SlurmctldLogFile={r}/log/slurmctld.log",
                    f"SlurmdLogFile={r}/log/slurmd.log",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "AccountingStorageType=accounting_storage/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core",  # memory is not consumed: jobs share the node
                    "MpiDefault=none",
                    "MinJobAge=300",
                    "SchedulerParameters=batch_sched_delay=0,sched_min_interval=0",
                    # Time limits are enforced within seconds, not at the next 30 s sweep
                    "OverTimeLimit=0",
                    "KillWait=2",
                    "ReturnToService=2",
                    "SlurmctldTimeout=30",
                    "SlurmdTimeout=30",
                    f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory=2048 "
                    "State=UNKNOWN",
                    "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
                    "PartitionName=short Nodes=localhost MaxTime=5 State=UP",
                    "",
                ]
            )
        )

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = (self.root / "log" / f"{name}.out").open("ab")
        self.processes[name] = subprocess.Popen(
            argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    def start_munge(self) -> None:
        r = self.root
        self._spawn(
            "munged",
            [
                "munged",
                "-F",
                "-f",
                "-S",
                str(self.munge_socket),
                f"--key-file={r}/munge/munge.key",
                f"--pid-file={r}/run/munged.pid",
                f"--seed-file={r}/munge/seed",
                f"--log-file={r}/log/munged.log",
            ],
        )
        _wait(self.munge_socket.exists, 10, "munged did not create its socket")

    def start_controller(self) -> None:
        self._spawn("slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf)])
        _wait(self.controller_answers, 30, "slurmctld did not answer", self)

    def start_node(self) -> None:
        self._spawn("slurmd", ["slurmd", "-D", "-N", "localhost", "-f", str(self.conf)])
        _wait(self.node_idle, 30, "the node never became idle", self)

    def controller_answers(self) -> bool:
        result = subprocess.run(
            ["scontrol", "ping"], env=self.env, capture_output=True, text=True, check=False
        )
        return "UP" in result.stdout

    def node_idle(self) -> bool:
        result = subprocess.run(
            ["sinfo", "-h", "-o", "%T", "-n", "localhost"],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        states = result.stdout.split()
        return bool(states) and all(s.rstrip("*") in ("idle", "mixed", "allocated") for s in states)

    def stop(self, name: str) -> None:
        """SIGTERM one daemon by its pid, SIGKILL if it lingers."""
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def stop_controller(self) -> None:
        self.stop("slurmctld")

    def stop_all(self) -> None:
        for name in ("slurmd", "slurmctld", "munged"):
            self.stop(name)

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.root / "log" / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _wait(check: object, within: float, message: str, cluster: SlurmCluster | None = None) -> None:
    deadline = time.monotonic() + within
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            detail = (
                cluster.log_tail("slurmctld") + "\n" + cluster.log_tail("slurmd") if cluster else ""
            )
            raise RuntimeError(f"{message}\n{detail}")
        time.sleep(0.1)


@contextlib.contextmanager
def running_cluster(root: Path) -> Iterator[SlurmCluster]:
    """Start munged + slurmctld + slurmd under ``root``; stop them by pid afterwards."""
    cluster = SlurmCluster(root=root, ctld_port=free_port(), slurmd_port=free_port())
    cluster.write_config()
    try:
        cluster.start_munge()
        cluster.start_controller()
        cluster.start_node()
        yield cluster
    finally:
        cluster.stop_all()
