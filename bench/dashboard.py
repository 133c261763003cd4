"""`python -m bench.dashboard` (`make dashboard-picture`): the picture of the Grafana dashboard
(deploy/grafana/s3csi-dashboard.json) in docs/observability-dashboard.svg, drawn from a real run, without
Grafana.

It starts s3rver, the node plugin on the local runtime with its Mountpoint Pods serving metrics, the
controller against the tests' fake API server, the webhook, and Prometheus (Debian's `prometheus` package,
its own configuration and a temporary storage directory) scraping every process's /metrics each second; puts
each under work for `--seconds` (writes, reads, listings and failing calls through a published volume,
publishes, workload pods, AdmissionReviews); then asks Prometheus's HTTP API (query_range) for each panel's
own expressions over the run, the dashboard's variables set to All, and draws the panels where their gridPos
puts them (bench/dashboard_svg.py). Needs root. See docs/performance.md, "The dashboard's picture".
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import errno
import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
import grpc
from botocore.config import Config

from bench import dashboard_svg, grafana
from bench.admission import review_requests
from bench.proxy import CountingProxy
from bench.publish import Server
from bench.servers import ACCESS_KEY, REGION, SECRET_KEY, S3rver, free_port
from s3csi.demo.local_node import DemoNode
from tests.admission_support import CertificateAuthority, WebhookProcess, post
from tests.controller_support import IMAGE, prepare, volume, workload
from tests.kube_fake import FakeKubeApi

MiB = 1024 * 1024
OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "observability-dashboard.svg"
BUCKET = "dashboard"
SEQUENTIAL_KEY = "data/sequential.bin"
SEQUENTIAL_SIZE = 64 * MiB
SMALL_PREFIX = "small"
SMALL_COUNT = 200
SMALL_SIZE = 4096
SMALL_READS = 50
# The read-write publish the mount workload goes through.
WRITER_FS_GROUP = 5000
WRITER_FLAGS = ("allow-delete", "allow-overwrite")
METRICS_SOCKET = "metrics.sock"
WRITE_SIZE = 16 * MiB
DELETED_SIZE = 8 * MiB
SCRAPE_INTERVAL_S = 1
# The namespace and pod labels Prometheus's Kubernetes discovery would give each process (a PodMonitor's
# target labels), so that the dashboard's variables select them as they would in a cluster.
MOUNTER_NAMESPACE = "s3csi-mounters"
DRIVER_NAMESPACE = "kube-system"
WORKLOAD_NAMESPACE = "team-a"
NODE_FS_GROUPS = (4000, 4001)
NODE_ROUND_S = 3.0
CONTROLLER_NODES = 3
CONTROLLER_FS_GROUPS = 4
CONTROLLER_LIVE_PODS = 8
CONTROLLER_ROUND_S = 1.0
CONTROLLER_GRACE_S = 2
WEBHOOK_INTERVAL_S = 0.1
STEP_TIMEOUT_S = 120.0
READY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ScrapeTarget:
    job: str
    address: str  # HOST:PORT
    labels: Mapping[str, str]


def prometheus_config(
    targets: Sequence[ScrapeTarget], interval_s: int, discovered: Mapping[str, Path] | None = None
) -> str:
    """Prometheus's configuration: each target scraped every `interval_s` seconds, with its labels, and the
    jobs of `discovered` (job name → file) scraping the targets listed in their file. JSON is YAML, so
    json.dumps writes it."""
    jobs: dict[str, list[dict[str, Any]]] = {}
    for target in targets:
        jobs.setdefault(target.job, []).append({"targets": [target.address], "labels": dict(target.labels)})
    interval = f"{interval_s}s"
    scrape: list[dict[str, Any]] = [
        {"job_name": job, "static_configs": static} for job, static in jobs.items()
    ]
    scrape += [
        {"job_name": job, "file_sd_configs": [{"files": [str(path)]}]}
        for job, path in (discovered or {}).items()
    ]
    config = {
        "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
        "scrape_configs": scrape,
    }
    return json.dumps(config, indent=2) + "\n"


def rate_interval(step_s: int, scrape_s: int) -> int:
    """Grafana's $__rate_interval: four scrapes, or one step and one scrape when that is longer."""
    return max(4 * scrape_s, step_s + scrape_s)


def legend(fmt: str, labels: Mapping[str, str]) -> str:
    """A target's legendFormat with `{{label}}` replaced as Grafana does; the series' labels without one."""
    if not fmt:
        return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
    text = fmt
    for name, value in labels.items():
        text = text.replace("{{" + name + "}}", value).replace("{{ " + name + " }}", value)
    # A label the series does not have is left out, as Grafana leaves it empty.
    while "{{" in text and "}}" in text[text.index("{{") :]:
        start = text.index("{{")
        text = text[:start] + text[text.index("}}", start) + 2 :]
    return " ".join(text.split())


def on_steps(
    values: Sequence[tuple[float, str]], start: float, end: float, step: int
) -> list[tuple[float, float]]:
    """Prometheus's [time, "value"] pairs on every step of [start, end]: NaN where it returned none (no
    sample yet, or a stale series), so that the line shows the gap."""
    by_time = {round(t): float(v) for t, v in values}
    return [(t, by_time.get(round(t), math.nan)) for t in _steps(start, end, step)]


def _steps(start: float, end: float, step: int) -> Iterator[float]:
    t = start
    while t <= end:
        yield t
        t += step


class Prometheus:
    """A Prometheus server on a free port of 127.0.0.1 with its configuration and storage in `workdir`."""

    def __init__(
        self, workdir: Path, targets: Sequence[ScrapeTarget], discovered: Mapping[str, Path] | None = None
    ) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise SystemExit(
                "bench.dashboard: prometheus not found (apt-get install prometheus, or `make bench`)"
            )
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "prometheus.yml"
        config.write_text(prometheus_config(targets, SCRAPE_INTERVAL_S, discovered))
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log_path = workdir / "prometheus.log"
        argv = [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}"]
        argv += [f"--web.listen-address={self.url.removeprefix('http://')}", "--log.level=warn"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            self._wait(lambda: self._get("/-/ready") is not None, "answer on /-/ready")
        except BaseException:
            self.stop()
            raise

    def _get(self, path: str) -> bytes | None:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                body: bytes = response.read()
                return body
        except (urllib.error.URLError, ConnectionError):
            return None

    def _wait(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not condition():
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.process.returncode}: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"prometheus did not {what} within {READY_TIMEOUT_S:g} s: {self.log_tail()}"
                )
            time.sleep(0.2)

    def log_tail(self) -> str:
        return " | ".join(self.log_path.read_text(errors="replace").strip().splitlines()[-3:])

    def wait_up(self, addresses: Sequence[str]) -> None:
        """Until each target at `addresses` (HOST:PORT) has been scraped successfully."""

        def up() -> bool:
            body = self._get("/api/v1/query?query=" + urllib.parse.quote("up == 1"))
            result = json.loads(body)["data"]["result"] if body else []
            return set(addresses) <= {series["metric"]["instance"] for series in result}

        self._wait(up, f"scrape {', '.join(addresses)}")

    def query_range(self, expr: str, start: float, end: float, step: int) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/query_range?{query}", timeout=30) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as error:
            answer = json.load(error)
        if answer.get("status") != "success":
            raise ValueError(f"Prometheus refused {expr!r}: {answer.get('error')}")
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)

    def __enter__(self) -> Prometheus:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def s3_client(endpoint_url: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(s3={"addressing_style": "path"}),
    )


def seed(endpoint_url: str) -> None:
    s3 = s3_client(endpoint_url)
    s3.create_bucket(Bucket=BUCKET)
    s3.upload_fileobj(io.BytesIO(os.urandom(SEQUENTIAL_SIZE)), BUCKET, SEQUENTIAL_KEY)
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda i: s3.put_object(
                    Bucket=BUCKET, Key=f"{SMALL_PREFIX}/{i:04d}", Body=os.urandom(SMALL_SIZE)
                ),
                range(SMALL_COUNT),
            )
        )


def _workload(kind: str, *args: str, stdin: str = "") -> None:
    """One step of bench/workload.py in a child process: a hung mount cannot hang the run."""
    argv = [sys.executable, "-m", "bench.workload", kind, *args]
    done = subprocess.run(
        argv, input=stdin.encode(), capture_output=True, timeout=STEP_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.workload {kind} failed: {done.stderr.decode(errors='replace')[-500:]}")


def _expect_errno(expected: int, call: Callable[[Path], object], path: Path) -> None:
    try:
        call(path)
    except OSError as error:
        if error.errno != expected:
            raise
        return
    raise RuntimeError(f"expected {errno.errorcode[expected]} from {call.__name__}({path})")


def _drop_cached(path: Path) -> None:
    """Drops the file's pages from the kernel's cache, so that each round's read goes to the mounter (and
    S3) again; other files keep theirs."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _read_deleted(s3: Any, root: Path, key: str) -> None:
    """Opens an object, deletes it behind the mount's back (as another S3 client would) and reads it: S3
    answers the GET with 404 (an S3 error of class client) and the read fails with ENOENT."""
    # Large enough that opening it does not fetch it whole (a small object's data comes with the open).
    s3.put_object(Bucket=BUCKET, Key=key, Body=os.urandom(DELETED_SIZE))
    # The mount may have listed the directory before the object existed: until its metadata cache expires
    # it does not see it.
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while not (root / key).exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{key} did not appear in the mount within {STEP_TIMEOUT_S:g} s")
        time.sleep(0.2)
    with open(root / key, "rb", buffering=0) as file:
        s3.delete_object(Bucket=BUCKET, Key=key)
        _expect_errno(errno.ENOENT, lambda _: file.read(), root / key)


def mounter_workload(root: Path, endpoint_url: str, stop: threading.Event) -> str:
    """Rounds of work through the published target `root` until `stop`."""
    s3 = s3_client(endpoint_url)
    (root / "out").mkdir(exist_ok=True)
    small = sorted(os.listdir(root / SMALL_PREFIX))
    rounds = 0
    while not stop.is_set():
        _workload("write", str(root / f"out/file-{rounds:03d}"), str(WRITE_SIZE))
        _drop_cached(root / SEQUENTIAL_KEY)
        _workload("read", str(root / SEQUENTIAL_KEY))
        part = small[(rounds * SMALL_READS) % len(small) :][:SMALL_READS]
        _workload("small-reads", str(root / SMALL_PREFIX), stdin="\n".join(part))
        os.listdir(root / "out")
        # Calls that fail, so that the error panels have something to show.
        _expect_errno(errno.ENOENT, os.stat, root / f"missing-{rounds}")
        _expect_errno(errno.EEXIST, os.mkdir, root / "out")
        _read_deleted(s3, root, f"gone-{rounds}")
        if rounds >= 2:
            (root / f"out/file-{rounds - 2:03d}").unlink()
        rounds += 1
        stop.wait(1.0)
    return (
        f"read-write publish (fsGroup {WRITER_FS_GROUP}): {rounds} rounds of a {WRITE_SIZE // MiB} MiB "
        f"write, a {SEQUENTIAL_SIZE // MiB} MiB sequential read, {SMALL_READS} small reads, a listing, "
        "a delete, a stat and a mkdir that fail (ENOENT, EEXIST) and a read of an object deleted behind the "
        "mount's back (ENOENT; S3 answers 404)"
    )


@dataclass(frozen=True)
class Component:
    """A process under observation: where Prometheus scrapes it, and the work done to it until stopped
    (returns what it did, for the caption)."""

    targets: Sequence[ScrapeTarget]
    work: Callable[[threading.Event], str]


class MountpointPodTargets:
    """Finds the Mountpoint Pods the node plugin started (their metrics.sock in their comm dir), puts a TCP
    proxy in front of each and lists them in the file Prometheus discovers targets from (file_sd_configs:
    it reads the file again when it changes)."""

    def __init__(self, node: DemoNode, sd_file: Path) -> None:
        self.node = node
        self.sd_file = sd_file
        self.proxies: dict[str, CountingProxy] = {}
        sd_file.write_text("[]\n")

    def refresh(self) -> None:
        for socket_path in sorted((self.node.state_dir / "pods").glob(f"*/comm/{METRICS_SOCKET}")):
            name = socket_path.parent.parent.name
            if name not in self.proxies:
                self.proxies[name] = CountingProxy(upstream_path=str(socket_path)).start()
        groups = [
            {"targets": [f"127.0.0.1:{proxy.port}"], "labels": {"namespace": MOUNTER_NAMESPACE, "pod": name}}
            for name, proxy in self.proxies.items()
        ]
        # Written aside and renamed: Prometheus must never read half a file.
        partial = self.sd_file.with_suffix(".partial")
        partial.write_text(json.dumps(groups))
        partial.rename(self.sd_file)

    def addresses(self) -> list[str]:
        return [f"127.0.0.1:{proxy.port}" for proxy in self.proxies.values()]

    def stop(self) -> None:
        for proxy in self.proxies.values():
            proxy.stop()


def publish(node: DemoNode, target: str, index: int, fs_group: int | None, flags: Sequence[str]) -> None:
    node.publish(
        volume_id=BUCKET,
        target=target,
        volume_context={"bucketName": BUCKET},
        mount_flags=flags,
        fs_group=fs_group,
        read_only=not flags,
        pod=(WORKLOAD_NAMESPACE, f"pod-{index}", f"uid-{index}"),
    )


def node_workload(node: DemoNode, pods: MountpointPodTargets, stop: threading.Event) -> str:
    """Publishes as kubelet makes them: each round a read-only pod with one of two fsGroups (a new
    Mountpoint Pod, or one joining a running one) reads a small file through its target, the oldest target
    is unpublished, and one NodePublishVolume without a target path is refused (INVALID_ARGUMENT)."""
    published: list[str] = []
    rounds = refused = 0
    while not stop.is_set():
        target = node.target_path(f"reader-{rounds}", "pv")
        publish(node, target, rounds, NODE_FS_GROUPS[rounds % len(NODE_FS_GROUPS)], ())
        pods.refresh()
        published.append(target)
        (Path(target) / SMALL_PREFIX / f"{rounds % SMALL_COUNT:04d}").read_bytes()
        if len(published) > len(NODE_FS_GROUPS) + 1:
            node.unpublish(BUCKET, published.pop(0))
        try:
            publish(node, "", rounds, None, ())
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.INVALID_ARGUMENT:
                raise
            refused += 1
        else:
            raise RuntimeError("NodePublishVolume without a target path was accepted")
        rounds += 1
        stop.wait(NODE_ROUND_S)
    for target in published:
        node.unpublish(BUCKET, target)
    return (
        f"node plugin: {rounds} read-only publishes (fsGroups {' and '.join(map(str, NODE_FS_GROUPS))}) "
        f"and unpublishes, {refused} refused; {len(pods.proxies)} Mountpoint Pods in all"
    )


@contextlib.contextmanager
def node_plugin(server: S3rver, sd_file: Path) -> Iterator[list[Component]]:
    """`s3csi driver --mode all` on the local runtime (bench/publish.py's set-up), its Mountpoint Pods
    serving their metrics: one read-write publish that the mount workload runs through, and the
    publishes of node_workload. Prometheus scrapes only TCP: the unix sockets are reached through proxies."""
    s3 = Server(server.endpoint_url, REGION, ACCESS_KEY, SECRET_KEY, "s3rver")
    with DemoNode(s3) as node:
        node.start_driver("--mountpoint-pod-metrics")
        pods = MountpointPodTargets(node, sd_file)
        try:
            app = node.target_path("app", "pv")
            publish(node, app, 0, WRITER_FS_GROUP, WRITER_FLAGS)
            pods.refresh()
            with CountingProxy(upstream_path=str(node.base / METRICS_SOCKET)) as proxy:
                labels = {"namespace": DRIVER_NAMESPACE, "pod": "s3csi-node-dashboard"}
                target = ScrapeTarget("node", f"127.0.0.1:{proxy.port}", labels)
                yield [
                    Component([target], lambda stop: node_workload(node, pods, stop)),
                    Component([], lambda stop: mounter_workload(Path(app), server.endpoint_url, stop)),
                ]
            node.unpublish(BUCKET, app)
        finally:
            pods.stop()


def controller_workload(api: FakeKubeApi, stop: threading.Event) -> str:
    """A workload pod created each round on one of three nodes with one of four fsGroups (now and then a
    new sharing key: a Mountpoint Pod created), the oldest deleted (a key left without pods: its Mountpoint
    Pod retired after the grace period)."""
    live: list[str] = []
    created = 0
    while not stop.is_set():
        name = f"w-{created}"
        fs_group = 1000 + (created // CONTROLLER_NODES) % CONTROLLER_FS_GROUPS
        api.add(workload(name, "shared", node=f"node-{created % CONTROLLER_NODES}", fs_group=fs_group))
        live.append(name)
        created += 1
        if len(live) > CONTROLLER_LIVE_PODS:
            api.remove("Pod", WORKLOAD_NAMESPACE, live.pop(0))
        stop.wait(CONTROLLER_ROUND_S)
    return f"controller: {created} workload pods created, {created - len(live)} deleted"


@contextlib.contextmanager
def controller(workdir: Path) -> Iterator[Component]:
    """`s3csi controller` against the fake API server (bench/controller.py's set-up)."""
    api = FakeKubeApi(workdir / "kube-api")
    try:
        prepare(api)
        volume(api, "shared")
        port = free_port()
        argv = [sys.executable, "-m", "s3csi", "controller", "--image", IMAGE, *api.driver_args()]
        argv += ["--identity", "dashboard", "--idle-grace-period", str(CONTROLLER_GRACE_S)]
        argv += [f"--metrics-address=127.0.0.1:{port}"]
        with (workdir / "controller.log").open("wb") as log:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            labels = {"namespace": DRIVER_NAMESPACE, "pod": "s3csi-controller-dashboard"}
            target = ScrapeTarget("controller", f"127.0.0.1:{port}", labels)
            yield Component([target], lambda stop: controller_workload(api, stop))
        finally:
            process.terminate()
            process.wait(timeout=30)
    finally:
        api.stop()


def webhook_workload(webhook: WebhookProcess, stop: threading.Event) -> str:
    """AdmissionReviews on one keep-alive connection, as the API server sends them (bench/admission.py's
    table), a few a second; every tenth body is not JSON (answered as an error)."""
    requests = review_requests()
    sent = 0
    with contextlib.closing(webhook.connect()) as connection:
        while not stop.is_set():
            request = requests[sent % len(requests)]
            post(connection, request.path, b"{not json" if sent % 10 == 9 else request.body)
            sent += 1
            stop.wait(WEBHOOK_INTERVAL_S)
    return f"webhook: {sent} AdmissionReviews"


@contextlib.contextmanager
def webhook(workdir: Path) -> Iterator[Component]:
    """`s3csi webhook` over HTTPS with a certificate of a CA made here (bench/admission.py's set-up)."""
    directory = workdir / "webhook"
    directory.mkdir()
    port = free_port()
    ca = CertificateAuthority.create(directory)
    process = WebhookProcess(directory, ca, f"--metrics-address=127.0.0.1:{port}")
    try:
        labels = {"namespace": DRIVER_NAMESPACE, "pod": "s3csi-webhook-dashboard"}
        target = ScrapeTarget("webhook", f"127.0.0.1:{port}", labels)
        yield Component([target], lambda stop: webhook_workload(process, stop))
    finally:
        process.terminate()


def collect(
    prometheus: Prometheus, panels: Sequence[grafana.Panel], start: float, end: float, step: int
) -> dict[int, list[dashboard_svg.Series]]:
    values = {"namespace": ".*", "volume_id": ".*", "pod": ".*"}
    values["__rate_interval"] = f"{rate_interval(step, SCRAPE_INTERVAL_S)}s"
    found: dict[int, list[dashboard_svg.Series]] = {}
    for panel in panels:
        for target in panel.targets:
            expr = grafana.substitute(target.expr, values)
            for result in prometheus.query_range(expr, start, end, step):
                points = on_steps([(t, v) for t, v in result["values"]], start, end, step)
                found.setdefault(panel.id, []).append(
                    dashboard_svg.Series(legend(target.legend, result["metric"]), points)
                )
    return found


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60, help="how long the workload runs (default 60)")
    parser.add_argument("--output", type=Path, default=OUTPUT, help=f"the SVG written (default {OUTPUT})")
    parser.add_argument(
        "--step", type=int, default=2, help="seconds between the points of each line (default 2)"
    )
    args = parser.parse_args(argv)
    if args.seconds < 10:
        parser.error("--seconds must be at least 10 (rates need a few scrapes)")
    if args.step < 1:
        parser.error("--step must be at least 1")
    return args


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench.dashboard: run as root (FUSE mounts, Mountpoint Pods as uid 1000)", file=sys.stderr)
        return 1
    panels = grafana.panels(grafana.load())
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="s3csi-dashboard-")))
        server = stack.enter_context(S3rver.start())
        seed(server.endpoint_url)
        pods_file = workdir / "mountpoint-pods.json"
        components = [
            *stack.enter_context(node_plugin(server, pods_file)),
            stack.enter_context(controller(workdir)),
            stack.enter_context(webhook(workdir)),
        ]
        targets = [target for component in components for target in component.targets]
        prometheus = stack.enter_context(
            Prometheus(workdir / "prometheus", targets, {"mountpoint-pods": pods_file})
        )
        discovered = [group["targets"][0] for group in json.loads(pods_file.read_text())]
        prometheus.wait_up([target.address for target in targets] + discovered)
        start = math.floor(time.time())
        stop = threading.Event()
        with ThreadPoolExecutor(len(components)) as pool:
            running = [pool.submit(component.work, stop) for component in components]
            # A component whose work fails ends the run early, with its error.
            wait(running, timeout=args.seconds, return_when=FIRST_EXCEPTION)
            stop.set()
            done = [future.result() for future in running]
        # Two more scrapes, so that the last rates cover the end of the work.
        time.sleep(2 * SCRAPE_INTERVAL_S)
        end = math.floor(time.time())
        series = collect(prometheus, panels, start, end, args.step)
    when = datetime.datetime.fromtimestamp(start, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    caption = "\n".join(
        [
            f"python -m bench.dashboard, {when}: {end - start} s against s3rver, each process scraped by "
            f"Prometheus every {SCRAPE_INTERVAL_S} s, variables All; series that stayed at 0 are not drawn "
            "when others in their panel moved.",
            *(f"{line}." for line in done),
        ]
    )
    args.output.write_text(dashboard_svg.render(dashboard_svg.Picture(panels, series, start, end, caption)))
    print(f"bench.dashboard: wrote {args.output}\n  " + "\n  ".join(done))
    empty = [panel.title for panel in panels if panel.kind != "row" and panel.id not in series]
    if empty:
        print(f"bench.dashboard: panels without data: {', '.join(empty)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
