"""The mounters under test (s3csi, s3fs-fuse, rclone): their command lines, a cold mount, its peak RSS."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from bench.servers import ACCESS_KEY, REGION, SECRET_KEY

MOUNT_TIMEOUT = 30.0
UNMOUNT_TIMEOUT = 20.0
RSS_INTERVAL = 0.05
METRICS_SOCKET = "metrics.sock"


@dataclass(frozen=True)
class MountCommand:
    argv: list[str]
    env: dict[str, str]


def mount_command(
    system: str,
    bucket: str,
    mountpoint: Path,
    endpoint_url: str,
    workdir: Path,
    *,
    tools: bool = False,
    metrics: bool = False,
) -> MountCommand:
    """How `system` mounts `bucket` at `mountpoint` in the foreground (so that its pid is the mounter's).

    `tools`: for the `tar -xf` and `rsync -a` rows, which set times and modes and rename temporary files
    (rsync): s3csi adds --allow-rename; "rclone" runs with `--vfs-cache-mode writes` (the mode rclone's
    documentation gives for applications that need more than sequential writes) instead of `off`, and both
    rclone mounts keep rclone's default write-back delay; s3fs needs nothing more.

    `metrics` (s3csi only): serve the mount's metrics on ``workdir/metrics.sock`` (``--metrics-address``).
    """
    env = dict(os.environ)
    if system == "s3csi":
        env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
        argv = [sys.executable, "-m", "s3csi", "mount", bucket, str(mountpoint), "--foreground"]
        argv += ["--endpoint-url", endpoint_url, "--force-path-style", "--region", REGION]
        argv += ["--allow-delete", "--allow-overwrite"]
        if tools:
            argv += ["--allow-rename"]
        if metrics:
            argv += ["--metrics-address", f"unix:{workdir / METRICS_SOCKET}"]
        return MountCommand(argv, env)
    if system == "s3fs":
        passwd = workdir / "s3fs.passwd"
        passwd.write_text(f"{ACCESS_KEY}:{SECRET_KEY}\n")
        passwd.chmod(0o600)
        options = f"url={endpoint_url},use_path_request_style,passwd_file={passwd},endpoint={REGION}"
        return MountCommand(["s3fs", bucket, str(mountpoint), "-f", "-o", options], env)
    if system in ("rclone", "rclone-full"):
        # rclone 1.60 refuses to start while AWS_CA_BUNDLE is set, even for an http endpoint.
        env.pop("AWS_CA_BUNDLE", None)
        config = workdir / "rclone.conf"
        config.touch()
        argv = ["rclone", "mount", f":s3:{bucket}", str(mountpoint), "--config", str(config)]
        argv += ["--s3-provider", "Other", "--s3-endpoint", endpoint_url, "--s3-region", REGION]
        argv += ["--s3-access-key-id", ACCESS_KEY, "--s3-secret-access-key", SECRET_KEY]
        argv += ["--cache-dir", str(workdir / "rclone-cache")]
        if tools:
            # rclone's default 5 s write-back delay: with 0 s, rclone 1.60 loses files that are renamed while
            # they upload (rsync's temporary files: "corrupted on transfer", never in S3). The rows time
            # until the files are in S3, so the delay is counted.
            argv += ["--vfs-cache-mode", "writes" if system == "rclone" else "full"]
        elif system == "rclone":
            argv += ["--vfs-cache-mode", "off"]
        else:
            # Upload at close rather than after the default 5 s write-back delay, as the others do.
            argv += ["--vfs-cache-mode", "full", "--vfs-write-back", "0s"]
        return MountCommand(argv, env)
    raise ValueError(f"unknown mounter {system!r}")


def is_mounted(mountpoint: Path) -> bool:
    with open("/proc/self/mountinfo") as mountinfo:
        return any(line.split()[4] == str(mountpoint) for line in mountinfo)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: the fields after the last ')' are fixed.
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry))
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(children.get(current, []))
    return found


def _hwm_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and its live descendants (and of children they reaped)."""
    ticks = 0
    for member in _descendants(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime, stime, cutime, cstime: fields 14-17 of proc(5), counted from the state field here.
        ticks += sum(int(value) for value in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


class RssSampler:
    """Samples the peak resident set (VmHWM) of a process and its children, summed, in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kib = 0
        self._seen: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        for pid in _descendants(self.pid):
            # A child that has exited keeps counting with the last peak it showed.
            self._seen[pid] = max(self._seen.get(pid, 0), _hwm_kib(pid))
        self.peak_kib = max(self.peak_kib, sum(self._seen.values()))

    def _run(self) -> None:
        while not self._stop.wait(RSS_INTERVAL):
            self._sample()

    def stop(self) -> float:
        """Stops sampling; the peak in MiB."""
        self._sample()
        self._stop.set()
        self._thread.join()
        return self.peak_kib / 1024


class Mount:
    """One cold mount: started in its own session, waited for, and always unmounted and reaped on exit."""

    def __init__(
        self,
        system: str,
        bucket: str,
        endpoint_url: str,
        workdir: Path,
        *,
        tools: bool = False,
        metrics: bool = False,
    ) -> None:
        self.system = system
        self.workdir = workdir
        self.mountpoint = workdir / "mnt"
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        command = mount_command(
            system, bucket, self.mountpoint, endpoint_url, workdir, tools=tools, metrics=metrics
        )
        self._log = open(workdir / f"{system}.log", "ab")  # noqa: SIM115 - closed in unmount()
        self.process = subprocess.Popen(
            command.argv,
            env=command.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_mounted()
        except BaseException:
            self.unmount()
            raise
        self.rss = RssSampler(self.process.pid)

    def _wait_mounted(self) -> None:
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while not is_mounted(self.mountpoint):
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.system} exited with status {self.process.returncode}: {self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.system} did not mount within {MOUNT_TIMEOUT:.0f} s: {self.log_tail()}"
                )
            time.sleep(0.02)

    def log_tail(self) -> str:
        self._log.flush()
        lines = (self.workdir / f"{self.system}.log").read_text(errors="replace").strip().splitlines()
        return " | ".join(lines[-3:])

    def unmount(self) -> None:
        """umount, then a lazy umount and SIGKILL if the mounter does not finish in time."""
        _umount(self.mountpoint)
        try:
            self.process.wait(timeout=UNMOUNT_TIMEOUT)
        except subprocess.TimeoutExpired:
            _umount(self.mountpoint, "-l")
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=UNMOUNT_TIMEOUT)
        _umount(self.mountpoint, "-l")
        self._log.close()

    def __enter__(self) -> Mount:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.rss.stop()
        self.unmount()


def _umount(mountpoint: Path, *flags: str) -> None:
    if is_mounted(mountpoint):
        try:
            subprocess.run(
                ["umount", *flags, str(mountpoint)], check=False, capture_output=True, timeout=UNMOUNT_TIMEOUT
            )
        except subprocess.TimeoutExpired:
            pass


def py_spy() -> str | None:
    """py-spy on PATH, else next to this interpreter (a virtual environment's bin/ need not be on PATH)."""
    beside = Path(sys.executable).parent / "py-spy"
    return shutil.which("py-spy") or (str(beside) if beside.is_file() else None)


class Profiler:
    """py-spy recording one process (and its threads, idle ones too) into collapsed stacks until exit."""

    def __init__(self, pid: int, output: Path) -> None:
        argv = [py_spy() or "py-spy", "record", "--pid", str(pid), "--output", str(output), "--format", "raw"]
        argv += ["--idle", "--threads", "--rate", "200", "--nonblocking"]
        self.process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        # py-spy needs a moment to attach; samples taken before it has are lost.
        time.sleep(0.5)

    def __enter__(self) -> Profiler:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=UNMOUNT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
