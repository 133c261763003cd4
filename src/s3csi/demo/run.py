"""``s3csi demo``: the whole system on this machine, played as a cluster would play it.

An embedded S3 server; ``s3csi driver --mode all`` with the local runtime on a temporary socket; the
static PVs (fsGroup, fsUser) and a dynamically provisioned volume (CreateVolume); pods published as kubelet
publishes them (NodePublishVolume with ``volume_mount_group`` = fsGroup) and run as their
runAsUser/runAsGroup with fsGroup as supplementary group. It prints what each pod sees and which
Mountpoint Pod served it, checks every claim, then unpublishes, deletes, and leaves nothing behind.
Exit status 0 only when every check held.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import grpc

from s3csi.demo.local_node import DemoNode, MountpointPodInfo
from s3csi.demo.report import Check, render_checks, render_table
from s3csi.demo.s3server import EmbeddedS3Server
from s3csi.demo.scenario import BUCKET, FSGROUP_EXAMPLE_OPTIONS, Pod, Volume, pods, static_volumes
from s3csi.errors import S3csiError
from s3csi.s3 import Credentials, S3Client, S3Settings, StaticCredentials

T = TypeVar("T")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No flags: the demo brings its own S3 server, driver and directories, and removes them."""


@dataclass
class Observed:
    pod: Pod
    target: str
    wrote: str = ""
    wrote_ok: bool = False
    sees: str = ""
    file_mode: str = ""
    mountpoint_pod: MountpointPodInfo | None = None
    in_bucket: bool = False


@dataclass
class Demo:
    s3_server: EmbeddedS3Server
    node: DemoNode
    checks: list[Check] = field(default_factory=list)

    def s3(self, call: Callable[[S3Client], Awaitable[T]]) -> T:
        settings = S3Settings(self.s3_server.region, self.s3_server.endpoint_url, force_path_style=True)
        keys = StaticCredentials(Credentials(self.s3_server.access_key_id, self.s3_server.secret_access_key))

        async def once() -> T:
            async with S3Client(settings, keys) as client:
                return await call(client)

        return asyncio.run(once())

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self.s3(lambda c: c.head_object(bucket, key))
        except S3csiError:
            return False
        return True

    def bucket_exists(self, bucket: str) -> bool:
        try:
            self.s3(lambda c: c.head_bucket(bucket))
        except S3csiError:
            return False
        return True

    def check(self, claim: str, held: bool, detail: str = "") -> None:
        self.checks.append(Check(claim, held, detail))

    def play(self) -> None:
        self.s3(lambda c: c.create_bucket(BUCKET))
        self.node.start_driver()
        volumes = {v.pv_name: v for v in static_volumes()}
        claim = f"pvc-{uuid.uuid4()}"
        created = self.node.create_volume(claim, FSGROUP_EXAMPLE_OPTIONS)
        dynamic = Volume(claim, created.volume_id, dict(created.volume_context), FSGROUP_EXAMPLE_OPTIONS)
        volumes[claim] = dynamic
        self.check(f"CreateVolume made bucket {dynamic.bucket}", self.bucket_exists(dynamic.bucket))

        observed = [self.run_pod(pod, volumes[pod.pv_name]) for pod in pods(claim)]
        self.report(observed, volumes)
        self.check_claims(observed, volumes)

        for seen in observed:
            self.node.unpublish(volumes[seen.pod.pv_name].volume_id, seen.target)
        self.node.delete_volume(dynamic.volume_id)
        self.check(f"DeleteVolume removed bucket {dynamic.bucket}", not self.bucket_exists(dynamic.bucket))
        leftovers = self.node.leftovers()
        self.check(
            "after unpublishing: no mounts, Mountpoint Pods or state left",
            not leftovers,
            ", ".join(leftovers),
        )

    def run_pod(self, pod: Pod, volume: Volume) -> Observed:
        target = self.node.target_path(f"uid-{pod.name}", volume.pv_name)
        self.node.publish(
            volume_id=volume.volume_id,
            target=target,
            volume_context=volume.volume_context,
            mount_flags=volume.mount_flags,
            fs_group=pod.fs_group,
            read_only=pod.read_only,
            pod=("default", pod.name, f"uid-{pod.name}"),
        )
        seen = Observed(pod, target)
        wrote = self.node.run_pod(
            pod.run_as_user, pod.run_as_group, pod.fs_group, pod.command.replace("/data", target)
        )
        seen.wrote_ok = wrote.status == 0
        seen.wrote = "ok" if seen.wrote_ok else wrote.output.rsplit(": ", 1)[-1]
        # What the pod sees: its volume's root and the file it wrote (a reader: the first pod's file).
        shown = pod.file if pod.writes else "test.txt"
        stat = self.node.run_pod(
            pod.run_as_user, pod.run_as_group, pod.fs_group, f"stat -c '%A %u:%g' {target} {target}/{shown}"
        )
        lines = stat.output.splitlines() if stat.status == 0 else ["?", "?"]
        seen.sees = "  ".join(lines)
        seen.file_mode = lines[-1].split()[0]
        seen.mountpoint_pod = self.node.mountpoint_pod_of(target)
        seen.in_bucket = self.exists(volume.bucket, f"{volume.prefix}{shown}")
        return seen

    def report(self, observed: list[Observed], volumes: dict[str, Volume]) -> None:
        rows = []
        for seen in observed:
            pod, mp = seen.pod, seen.mountpoint_pod
            volume = volumes[pod.pv_name]
            rows.append(
                [
                    pod.name,
                    pod.pv_name if len(pod.pv_name) < 16 else pod.pv_name[:13] + "…",
                    f"{pod.run_as_user}:{pod.run_as_group}",
                    "-" if pod.fs_group is None else str(pod.fs_group),
                    "ro" if pod.read_only else "rw",
                    f"{pod.file}: {seen.wrote}",
                    seen.sees,
                    f"mp-{mp.name.removeprefix('s3csi-mp-')[:8]} pid {mp.pid}" if mp else "?",
                    f"{'yes' if seen.in_bucket else 'NO'} {volume.bucket[:16]}/{volume.prefix}"
                    f"{pod.file if pod.writes else 'test.txt'}",
                ]
            )
        header = [
            "POD",
            "VOLUME",
            "USER",
            "fsGROUP",
            "RW",
            "WRITE",
            "SEES /data, file",
            "MOUNTPOINT POD",
            "IN BUCKET",
        ]
        print("Each pod runs `echo hello > /data/FILE` as USER with fsGROUP as supplementary group.\n")
        print(render_table(header, rows))

    def check_claims(self, observed: list[Observed], volumes: dict[str, Volume]) -> None:
        by_name = {seen.pod.name: seen for seen in observed}
        for seen in observed:
            pod = seen.pod
            if pod.writes:
                self.check(
                    f"{pod.name} wrote /data/{pod.file} and the object is in the bucket",
                    seen.wrote_ok and seen.in_bucket,
                    seen.wrote,
                )
            else:
                self.check(
                    f"{pod.name} (read-only) is refused writes with EROFS",
                    "Read-only file system" in seen.wrote,
                    seen.wrote,
                )
            self.check(
                f"{pod.name} sees its file as {pod.file_mode}", seen.file_mode == pod.file_mode, seen.sees
            )
            if pod.fs_group is not None:
                group = seen.sees.split()[-1].split(":")[-1] if seen.sees else "?"
                self.check(
                    f"{pod.name} sees group {pod.fs_group}: its fsGroup",
                    group == str(pod.fs_group),
                    seen.sees,
                )

        def mp(name: str) -> str | None:
            found = by_name[name].mountpoint_pod
            return found.name if found else None

        self.check(
            "s3-app-1 and s3-app-2 (equal fsGroup) share one Mountpoint Pod",
            mp("s3-app-1") is not None and mp("s3-app-1") == mp("s3-app-2"),
        )
        distinct = {mp(name) for name in ("s3-app-1", "other-group", "reader", "ssh-user", "dynamic-app")}
        self.check(
            "another fsGroup, read-only, fsUser and another volume each get their own",
            len(distinct) == 5 and None not in distinct,
        )
        ssh = by_name["ssh-user"]
        other = self.node.run_pod(1006, 1005, 1005, f"cat {ssh.target}/id.txt")
        self.check(
            "ssh-user's files are owner-only: uid 1006 in its group cannot read them",
            other.status != 0,
            other.output,
        )
        mounters = {seen.mountpoint_pod.name: seen.mountpoint_pod for seen in observed if seen.mountpoint_pod}
        unprivileged = all(
            m.uid.split() == ["1000"] * 4 and int(m.cap_eff or "1", 16) == 0 for m in mounters.values()
        )
        self.check(f"all {len(mounters)} Mountpoint Pods run as uid 1000 with no capabilities", unprivileged)


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    print("s3csi demo: embedded S3 server, driver --mode all (local runtime), fsGroup and fsUser scenarios\n")
    with EmbeddedS3Server.start() as s3_server, DemoNode(s3_server) as node:
        demo = Demo(s3_server, node)
        try:
            demo.play()
        except grpc.RpcError as exc:
            demo.check("every CSI call succeeded", False, f"{exc.code().name}: {exc.details()}")
            print(f"driver log: {node.driver_log(5)}", file=sys.stderr)
    print()
    print(render_checks(demo.checks))
    failed = [c for c in demo.checks if not c.held]
    elapsed = time.monotonic() - started
    print(f"\n{len(demo.checks) - len(failed)}/{len(demo.checks)} checks held in {elapsed:.1f} s")
    return 0 if demo.checks and not failed else 1
