"""A local team stack for trying and testing: PostgreSQL, an S3-compatible server (moto) and an MLflow tracking
server on that database with artifacts proxied to the bucket, all on 127.0.0.1 with generated credentials.

    python team/stack.py start [--dir .team]   # prints the client environment; writes <dir>/env.sh
    python team/stack.py stop [--dir .team]    # stops each server by its PID

Real hosts (a managed PostgreSQL and S3, or a self-hosted compose file) are in the README's "Team set-up".
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from fer_age.errors import FerAgeError

BUCKET = "fer-age"
REGION = "us-east-1"
STATE_FILE = "stack.json"
ENV_FILE = "env.sh"
STACK_FILES = {"postgres", "postgres.log", "s3.log", "mlflow.log", ENV_FILE}
S3_POLICY = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}'


class StackError(FerAgeError, RuntimeError):
    """A part of the team stack could not be started."""


@dataclass
class Stack:
    """What a started stack is: its folder, servers (PIDs, ports) and generated credentials."""

    root: str
    postgres_pid: int
    postgres_port: int
    postgres_password: str
    s3_pid: int
    s3_port: int
    access_key_id: str
    secret_access_key: str
    mlflow_pid: int
    mlflow_port: int
    started_seconds: float

    @property
    def backend_store_uri(self) -> str:
        return f"postgresql+psycopg2://mlflow:{self.postgres_password}@127.0.0.1:{self.postgres_port}/mlflow"

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def client_env(self) -> dict[str, str]:
        """What a client (``dvc repro``, ``dvc push``, MlflowClient) needs in its environment."""
        return {
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{self.mlflow_port}",
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_DEFAULT_REGION": REGION,
            "FER_AGE_S3_ENDPOINT": self.s3_endpoint,
            # artifact downloads stream through the server: moto, with authentication on, rejects the
            # presigned URLs MLflow would otherwise fetch directly (a real S3 or MinIO accepts them)
            "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "false",
        }

    def save(self) -> None:
        root = Path(self.root)
        (root / STATE_FILE).write_text(json.dumps(asdict(self), indent=2))
        lines = [f"export {key}={value}" for key, value in self.client_env().items()]
        (root / ENV_FILE).write_text("\n".join(lines) + "\n")
        for name in (STATE_FILE, ENV_FILE):
            (root / name).chmod(0o600)

    @classmethod
    def load(cls, root: Path) -> Stack:
        return cls(**json.loads((root / STATE_FILE).read_text()))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(ready, what: str, process: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    """Poll ``ready()`` until it is true, the process exits, or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackError(f"{what} exited with code {process.returncode}; see {log}")
        try:
            if ready():
                return
        except Exception:  # not answering yet
            pass
        time.sleep(0.25)
    raise StackError(f"{what} did not answer within {timeout:.0f} s; see {log}")


def postgres_bin(name: str) -> str:
    """A PostgreSQL server program from PATH or Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which(name) or next(
        iter(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)), None
    )
    if not found:
        raise StackError(f"PostgreSQL's {name} is not installed; install it with 'apt-get install postgresql'")
    return str(found)


def server_user() -> dict:
    """Popen arguments that run PostgreSQL as the 'postgres' user when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return {}
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise StackError("running as root needs a 'postgres' user (Debian's postgresql package creates it)") from None
    return {"user": "postgres", "group": "postgres", "extra_groups": []}


def start_postgres(root: Path, password: str) -> tuple[subprocess.Popen, int]:
    """initdb a cluster in ``root/postgres`` (superuser 'mlflow'), start it on 127.0.0.1 and create database mlflow."""
    import psycopg2

    as_user = server_user()
    if as_user:  # the 'postgres' user may not enter root's folders: its cluster lives in a folder of its own
        data = Path(tempfile.mkdtemp(prefix="fer-age-postgres-"))
        shutil.chown(data, "postgres", "postgres")
        (root / "postgres").symlink_to(data)
    else:
        data = root / "postgres"
        data.mkdir(mode=0o700)
    password_file = data / "password.tmp"
    password_file.write_text(password)
    if as_user:
        shutil.chown(password_file, "postgres", "postgres")
    initdb = subprocess.run(
        [
            postgres_bin("initdb"),
            "-D",
            str(data / "cluster"),
            "-U",
            "mlflow",
            f"--pwfile={password_file}",
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
        ],
        capture_output=True,
        text=True,
        **as_user,
    )
    password_file.unlink()
    if initdb.returncode != 0:
        raise StackError(f"initdb failed: {initdb.stderr.strip()[-500:]}")
    data = data / "cluster"
    port, log = free_port(), root / "postgres.log"
    process = subprocess.Popen(
        [postgres_bin("postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port), "-k", str(data)],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        **as_user,
    )

    def create_database() -> bool:
        connection = psycopg2.connect(
            host="127.0.0.1", port=port, user="mlflow", password=password, dbname="postgres", connect_timeout=2
        )
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("CREATE DATABASE mlflow")
        connection.close()
        return True

    wait_until(create_database, "PostgreSQL", process, log)
    return process, port


def start_s3(root: Path) -> tuple[subprocess.Popen, int, str, str]:
    """moto's S3 server with authentication on; an IAM user's generated keys own bucket ``fer-age``."""
    import boto3

    port, log = free_port(), root / "s3.log"
    # the first 3 requests (the IAM set-up below) are unauthenticated; every later one must be signed
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"}
    moto = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    wait_until(lambda: urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2), "the S3 server", process, log)
    bootstrap = {
        "endpoint_url": endpoint,
        "region_name": REGION,
        "aws_access_key_id": "bootstrap",
        "aws_secret_access_key": "bootstrap",
    }
    iam = boto3.client("iam", **bootstrap)
    iam.create_user(UserName="fer-age")
    iam.put_user_policy(UserName="fer-age", PolicyName="s3-all", PolicyDocument=S3_POLICY)
    key = iam.create_access_key(UserName="fer-age")["AccessKey"]
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    ).create_bucket(Bucket=BUCKET)
    return process, port, key["AccessKeyId"], key["SecretAccessKey"]


def start_mlflow(root: Path, backend_store_uri: str, s3_endpoint: str, key_id: str, secret: str):
    """``mlflow server`` on the PostgreSQL store, proxying artifacts to ``s3://fer-age/mlartifacts``."""
    port, log = free_port(), root / "mlflow.log"
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": REGION,
        "MLFLOW_S3_ENDPOINT_URL": s3_endpoint,
        "MLFLOW_BACKEND_STORE_URI": backend_store_uri,
    }  # not in `ps`
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("mlflow")),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--artifacts-destination",
            f"s3://{BUCKET}/mlartifacts",
            "--workers",
            "2",
        ],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_until(
        lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).status == 200,
        "the MLflow server",
        process,
        log,
        timeout=120,
    )
    return process, port


def start(root: Path) -> Stack:
    """Start the three servers in ``root`` (which must not hold a running stack); stop them all on failure."""
    root = root.resolve()
    if (root / STATE_FILE).exists():
        raise StackError(f"{root} already holds a stack; stop it first (python team/stack.py stop)")
    if root.exists():  # a stopped stack's folder is reused; any other folder is never deleted
        foreign = sorted(p.name for p in root.iterdir() if p.name not in STACK_FILES)
        if foreign:
            raise StackError(
                f"{root} holds files that are not a team stack's ({', '.join(foreign[:3])}); choose another --dir"
            )
        shutil.rmtree(root)
    root.mkdir(parents=True)
    started, processes = time.monotonic(), []
    try:
        password = secrets.token_urlsafe(24)
        postgres, pg_port = start_postgres(root, password)
        processes.append(postgres)
        s3, s3_port, key_id, secret = start_s3(root)
        processes.append(s3)
        stack = Stack(str(root), postgres.pid, pg_port, password, s3.pid, s3_port, key_id, secret, 0, 0, 0.0)
        mlflow, stack.mlflow_port = start_mlflow(root, stack.backend_store_uri, stack.s3_endpoint, key_id, secret)
        processes.append(mlflow)
    except BaseException:
        for process in reversed(processes):
            stop_process(process.pid)
        raise
    stack.mlflow_pid, stack.started_seconds = mlflow.pid, round(time.monotonic() - started, 1)
    stack.save()
    return stack


def stop_process(pid: int, timeout: float = 30.0) -> None:
    """SIGTERM the process group led by ``pid`` (servers start in their own session), SIGKILL after ``timeout``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG)[0]:  # our child, now reaped
                    return
            except ChildProcessError:  # started by another process: poll for it instead
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
            time.sleep(0.1)


def stop(root: Path) -> None:
    """Stop the MLflow server, the S3 server and PostgreSQL of the stack in ``root``; keep its logs."""
    stack = Stack.load(root)
    for pid in (stack.mlflow_pid, stack.s3_pid, stack.postgres_pid):
        stop_process(pid)
    postgres = root / "postgres"
    if postgres.is_symlink():  # the cluster of a root-started stack, outside ``root``
        shutil.rmtree(postgres.resolve())
        postgres.unlink()
    (root / STATE_FILE).unlink()


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(prog="python team/stack.py", description=__doc__.splitlines()[0])
    cli.add_argument("action", choices=("start", "stop"))
    cli.add_argument("--dir", type=Path, default=Path(".team"), help="the stack's folder (default: .team)")
    args = cli.parse_args(argv)
    try:
        if args.action == "stop":
            stop(args.dir)
            print(f"team stack in {args.dir} stopped")
            return 0
        stack = start(args.dir)
    except (FerAgeError, FileNotFoundError) as err:
        print(f"team stack: error: {err}", file=sys.stderr)
        return 1
    print(
        f"team stack started in {stack.started_seconds} s: MLflow http://127.0.0.1:{stack.mlflow_port} "
        f"(PostgreSQL :{stack.postgres_port}, S3 {stack.s3_endpoint}, bucket {BUCKET})"
    )
    print(
        f"clients: source {args.dir / ENV_FILE}, then once per clone:\n"
        f"  dvc remote add -d team s3://{BUCKET}/dvc\n"
        f"  dvc remote modify --local team endpointurl $FER_AGE_S3_ENDPOINT"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
