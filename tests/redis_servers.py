"""Redis servers the tests start themselves (single, TLS, unix socket, cluster, sentinel).

They need only the ``redis-server`` / ``redis-cli`` / ``redis-sentinel`` binaries and never touch the
shared server. Each runs in the foreground as our child process, on a free port, without persistence,
and is killed by whoever started it (fixtures do it in a finalizer, also when the test failed).
"""
from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from services import free_port, missing  # noqa: F401  (free_port: used by the tests)


def require_binary(name: str) -> str:
    """The binary's path; a missing one fails the test under DASH_STATE_REQUIRE_SERVICES=1, else skips loudly."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path:
        return path
    missing(f"{name} is not installed (Debian: apt-get install redis-server redis-sentinel redis-tools)")


def free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too; Redis wants port <= 55535."""
    for _ in range(200):
        port = random.randint(20000, 55535)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair for a cluster node")


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout} s waiting for {what}")
        time.sleep(interval)


class RedisServer:
    """One redis-server (or redis-sentinel) process; ``start`` again after ``kill`` reuses the port."""

    def __init__(self, workdir: Path, *args: str, port: int | None = None, binary: str = "redis-server",
                 password: str | None = None, client_kwargs: dict | None = None):
        self.sentinel = binary == "redis-sentinel"
        if self.sentinel and not shutil.which(binary) and not Path(f"/usr/bin/{binary}").exists():
            binary = "redis-server"  # the same program: redis-sentinel is a symlink to it, run with --sentinel
        self.binary = require_binary(binary)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port() if port is None else port
        self.password = password
        self.args = list(args)
        self.client_kwargs = client_kwargs if client_kwargs is not None else {"host": "127.0.0.1", "port": self.port}
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        if self.sentinel:
            return [self.binary, *self.args] + ([] if self.binary.endswith("redis-sentinel") else ["--sentinel"])
        auth = ["--requirepass", self.password] if self.password else []
        return [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--daemonize", "no", "--dir", str(self.workdir), *auth, *self.args]

    def start(self, timeout: float = 10.0) -> "RedisServer":
        log = open(self.workdir / "server.log", "ab")
        self.process = subprocess.Popen(self.command(), cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        try:
            wait_for(self._answers, timeout, f"{self.binary} on port {self.port}")
        except TimeoutError:
            self.kill()
            raise RuntimeError(f"{self.binary} did not start: {self.log_tail()}") from None
        return self

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.binary} exited with {self.process.returncode}: {self.log_tail()}")
        with self.client(socket_connect_timeout=0.5, socket_timeout=1, retry=Retry(NoBackoff(), 0)) as client:
            return client.ping()

    def client(self, **kwargs) -> redis.Redis:
        return redis.Redis(**{**self.client_kwargs, "password": self.password, **kwargs})

    def kill(self) -> None:
        """SIGKILL, like a crash: no clean shutdown, nothing saved."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def log_tail(self) -> str:
        path = self.workdir / "server.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else "(no log)"


@contextmanager
def redis_cluster(workdir: Path, nodes: int = 3) -> Iterator[list[RedisServer]]:
    """A cluster of ``nodes`` masters (no replicas), every slot assigned, ``cluster_state:ok`` everywhere."""
    cli = require_binary("redis-cli")
    servers: list[RedisServer] = []
    try:
        for _ in range(nodes):
            port = free_cluster_port()
            node_dir = Path(workdir) / f"node-{port}"
            servers.append(RedisServer(node_dir, "--cluster-enabled", "yes", "--cluster-config-file",
                                       str(node_dir / f"nodes-{port}.conf"), "--cluster-node-timeout", "5000",
                                       port=port).start())
        create = subprocess.run([cli, "--cluster", "create", *(f"127.0.0.1:{s.port}" for s in servers),
                                 "--cluster-replicas", "0", "--cluster-yes"],
                                capture_output=True, text=True, timeout=60)
        if create.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {create.stdout[-2000:]} {create.stderr[-2000:]}")

        def ready() -> bool:
            for server in servers:
                with server.client() as client:
                    info = client.execute_command("CLUSTER INFO")  # parsed into a dict by redis-py
                    if info["cluster_state"] != "ok" or int(info["cluster_known_nodes"]) != nodes:
                        return False
            return True

        wait_for(ready, 30, "cluster_state:ok on every node", interval=0.1)
        yield servers
    finally:
        for server in servers:
            server.kill()


@contextmanager
def redis_sentinel(workdir: Path, service: str = "mymaster") -> Iterator[tuple[RedisServer, RedisServer]]:
    """One master and one sentinel monitoring it (quorum 1); yields (master, sentinel) once the sentinel
    reports the master as up."""
    workdir = Path(workdir)
    master = RedisServer(workdir / "master")
    sentinel = None
    try:
        master.start()
        port = free_port()
        conf = workdir / "sentinel" / "sentinel.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(f"port {port}\nbind 127.0.0.1\ndaemonize no\ndir {conf.parent}\n"
                        f"sentinel monitor {service} 127.0.0.1 {master.port} 1\n"
                        f"sentinel down-after-milliseconds {service} 5000\n")
        sentinel = RedisServer(conf.parent, str(conf), port=port, binary="redis-sentinel").start()

        def master_known() -> bool:
            with sentinel.client() as client:
                state = client.sentinel_master(service)
                return state["port"] == master.port and state["is_master"] and not state["is_sdown"]

        wait_for(master_known, 20, f"the sentinel to report {service} up", interval=0.1)
        yield master, sentinel
    finally:
        if sentinel is not None:
            sentinel.kill()
        master.kill()
