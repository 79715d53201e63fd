"""Hosts on one machine: network namespaces joined to a database namespace by veth pairs, Postgres
serving TCP inside its namespace, and processes started inside a namespace. Needs root and ``ip``.

Layout (``N`` is a per-test number): the test's own namespace reaches the database at 10.N.0.2; worker
host ``i`` has its own link to the database namespace and reaches it at 10.N.i.1. Cutting a worker host
off sets its end of the link down, as a pulled cable would: packets are dropped, connections hang, and
nothing is closed cleanly.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pgserver
import psycopg

PG_BIN = Path(pgserver.__file__).parent / "pginstall" / "bin"
PG_USER = "postgres"  # Postgres refuses to run as root


def ip(*args: str) -> None:
    """Run ``ip ARGS``; raise with its stderr if it fails."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def namespaces_permitted() -> str | None:
    """None when this process may make namespaces and veth pairs, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    probe = f"c15p{random.randrange(16**4):04x}"
    try:
        ip("netns", "add", probe)
    except RuntimeError as exc:
        return str(exc)
    ip("netns", "del", probe)
    return None


@dataclass
class Hosts:
    """A database host and worker hosts, each a namespace."""

    workers: int
    tag: str = field(default_factory=lambda: f"{random.randrange(16**4):04x}")
    net: int = field(default_factory=lambda: random.randrange(100, 250))
    made: list[str] = field(default_factory=list)
    root_link: str = ""

    def ns(self, host: str) -> str:
        """The namespace of ``host`` ('db' or 'w1', 'w2', ...)."""
        return f"c15{host}{self.tag}"

    def worker_link(self, i: int) -> str:
        """Worker ``i``'s end of its link to the database host."""
        return f"c15w{i}{self.tag}"

    def db_address(self, i: int) -> str:
        """The database's address as worker ``i`` (0: the test itself) reaches it."""
        return f"10.{self.net}.{i}.1" if i else f"10.{self.net}.0.2"

    def up(self) -> None:
        """Make the namespaces and the links."""
        db = self.ns("db")
        ip("netns", "add", db)
        self.made.append(db)
        ip("-n", db, "link", "set", "lo", "up")
        # The test's own namespace to the database.
        self.root_link = f"c15r{self.tag}"
        ip("link", "add", self.root_link, "type", "veth", "peer", "name", f"c15d0{self.tag}")
        ip("link", "set", f"c15d0{self.tag}", "netns", db)
        ip("addr", "add", f"10.{self.net}.0.1/24", "dev", self.root_link)
        ip("link", "set", self.root_link, "up")
        ip("-n", db, "addr", "add", f"10.{self.net}.0.2/24", "dev", f"c15d0{self.tag}")
        ip("-n", db, "link", "set", f"c15d0{self.tag}", "up")
        for i in range(1, self.workers + 1):
            host = self.ns(f"w{i}")
            ip("netns", "add", host)
            self.made.append(host)
            ip("-n", host, "link", "set", "lo", "up")
            db_end = f"c15d{i}{self.tag}"
            ip("link", "add", db_end, "type", "veth", "peer", "name", self.worker_link(i))
            ip("link", "set", db_end, "netns", db)
            ip("link", "set", self.worker_link(i), "netns", host)
            ip("-n", db, "addr", "add", f"10.{self.net}.{i}.1/24", "dev", db_end)
            ip("-n", db, "link", "set", db_end, "up")
            ip("-n", host, "addr", "add", f"10.{self.net}.{i}.2/24", "dev", self.worker_link(i))
            ip("-n", host, "link", "set", self.worker_link(i), "up")

    def cut(self, i: int) -> None:
        """Take worker host ``i`` off the network."""
        ip("-n", self.ns(f"w{i}"), "link", "set", self.worker_link(i), "down")

    def restore(self, i: int) -> None:
        """Put worker host ``i`` back on the network."""
        ip("-n", self.ns(f"w{i}"), "link", "set", self.worker_link(i), "up")

    def down(self) -> None:
        """Delete the namespaces (their links go with them)."""
        for ns in reversed(self.made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        if self.root_link:
            subprocess.run(["ip", "link", "del", self.root_link], capture_output=True)


class NamespacedPostgres:
    """A Postgres server run as the postgres user inside the database namespace, on TCP port 5432."""

    def __init__(self, hosts: Hosts) -> None:
        self.hosts = hosts
        self.data = Path(tempfile.mkdtemp(prefix="c15pg-"))
        self.log = self.data.parent / f"{self.data.name}.log"
        shutil.chown(self.data, PG_USER)
        self.proc: subprocess.Popen[bytes] | None = None
        self._as_postgres(
            str(PG_BIN / "initdb"), "-D", str(self.data / "db"), "-U", "postgres", "-A", "trust"
        )
        with (self.data / "db" / "pg_hba.conf").open("a") as fh:
            fh.write(f"host all all 10.{hosts.net}.0.0/16 trust\n")

    def _as_postgres(self, *args: str) -> None:
        subprocess.run(["runuser", "-u", PG_USER, "--", *args], check=True, capture_output=True)

    def dsn(self, i: int, dbname: str = "postgres") -> str:
        """The DSN worker host ``i`` (0: the test) uses."""
        return f"host={self.hosts.db_address(i)} port=5432 user=postgres dbname={dbname} connect_timeout=5"

    def start(self) -> None:
        """Start the server in its namespace and wait until it answers over TCP."""
        log = self.log.open("ab")
        self.proc = subprocess.Popen(
            [
                *("ip", "netns", "exec", self.hosts.ns("db"), "runuser", "-u", PG_USER, "--"),
                *(str(PG_BIN / "postgres"), "-D", str(self.data / "db"), "-c", "listen_addresses=*"),
                *("-c", "port=5432", "-c", f"unix_socket_directories={self.data}"),
            ],
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                psycopg.connect(self.dsn(0), autocommit=True).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"Postgres did not start in its namespace; see {self.log}") from None
                time.sleep(0.2)

    def stop(self) -> None:
        """Fast shutdown (clients are disconnected), as a restart by an operator would do."""
        if self.proc is not None and self.proc.poll() is None:
            # Through pg_ctl: the process started here is `ip netns exec` → runuser, not postgres.
            self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data / "db"), "-m", "fast", "-w", "stop")
            self.proc.wait(60)

    def remove(self) -> None:
        """Stop and delete the data directory."""
        self.stop()
        shutil.rmtree(self.data, ignore_errors=True)
        self.log.unlink(missing_ok=True)


def start_in(
    hosts: Hosts, host: str, args: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``args`` (a Python module's argv after ``-m``) inside ``host``'s namespace."""
    out = log.open("ab")
    return subprocess.Popen(
        ["ip", "netns", "exec", hosts.ns(host), sys.executable, "-m", *args],
        stdout=out,
        stderr=out,
        env=env,
    )
