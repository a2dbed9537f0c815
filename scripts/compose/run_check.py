"""Starts the compose stack from its own commands, on this machine (scripts/compose/README.md).

Every service of docker-compose.yml (the default profile and every other profile) runs as the
process its container would run: its entrypoint and command, its environment, its mounted files,
in dependency order (`depends_on` conditions), each judged by its own health check. Hostnames are
mapped to 127.0.0.1 and every container port to a free local port; the programs are the local
ones (shim.py). The Kafka brokers (a JVM image) do not run: the local broker stands in for them,
and kafka-init's kafka-topics.sh calls are judged (kafka_init.py), then its topics created on the
local broker. Afterwards: the Redis Cluster is formed (cluster_state:ok on every node) and every
Sentinel sees the primary, its replicas and the other Sentinels.

Usage: run_check.py COMPOSE_FILE BIN_DIR   (LB_KAFKA_BROKERS: the local broker)
Prints one line per event and a one-line summary; exits 1 when anything failed.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import yaml

import kafka_init
from check import walk_strings
from stack import Container, Stack, app_image_from_dockerfile, container_ports, real_programs, seconds

HERE = os.path.dirname(os.path.abspath(__file__))
DEADLINE = float(os.environ.get("LB_COMPOSE_RUN_DEADLINE", "75"))  # the whole run, seconds
HEALTH_CAP = float(os.environ.get("LB_COMPOSE_RUN_HEALTH_CAP", "25"))  # per container
STOP_CAP = 10.0
POLL = 0.2
T0 = time.monotonic()


SAY = threading.Lock()
QUIET = threading.Event()  # set at the stop: what containers do then is not news


def say(text):
    with SAY:
        if QUIET.is_set():
            return
        sys.stdout.write(f"[compose-run {time.monotonic() - T0:5.1f}s] {text}\n")
        sys.stdout.flush()


def free_port(taken):
    """A free loopback port whose +10000 (a cluster node's bus) is free too."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port > 55535 or port in taken or port + 10000 in taken:
            continue
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        taken.update({port, port + 10000})
        return port
    raise RuntimeError("no free port pair found")


def run_environment(tag):
    """What an operator's .env would hold: the Redis passwords (made for this run), and names of
    this run's own so nothing shared is touched; a small load for the load profile."""
    env = {f"LB_REDIS_{role}_PASSWORD": secrets.token_hex(24)
           for role in ("API", "INGEST", "ADMIN", "REPLICA", "SENTINEL", "CLUSTER")}
    env.update(
        LB_TOPIC=f"compose-run-{tag}", LB_DLQ_TOPIC=f"compose-run-{tag}.dlq",
        LB_PLAYERS_TOPIC=f"compose-run-{tag}.players", LB_SEASON_RESULTS_TOPIC=f"compose-run-{tag}.seasons",
        LB_INGEST_GROUP=f"compose-run-{tag}",
        LB_LOADGEN_BOARD=f"compose-run-{tag}", LB_LOADGEN_RATE="200", LB_LOADGEN_DURATION="3s",
        LB_LOADGEN_PLAYERS="1000",
    )
    return env


class Runner:
    """Starts each container when its dependencies allow, judges it, and stops them all."""

    def __init__(self, stack, run_dir, bin_dir, broker):
        self.stack, self.run_dir, self.bin_dir, self.broker = stack, run_dir, bin_dir, broker
        self.cond = threading.Condition()
        self.state = {c.name: "waiting" for c in stack.containers()}
        self.reason = {}
        self.procs = {}  # name -> Popen
        self.started = []  # start order, for the stop
        self.stopping = False
        self.record = os.path.join(run_dir, "kafka-topics.calls")

    # -- states -------------------------------------------------------------------------------
    def set(self, c, state, reason=None):
        with self.cond:
            self.state[c.name] = state
            if reason:
                self.reason[c.name] = reason
            self.cond.notify_all()
        say(f"{c.name}: {state}" + (f": {reason}" if reason else ""))

    def condition(self, service, wanted):
        """True when met, False when it never will be, None while undecided."""
        states = [self.state[c.name] for c in self.stack.services[service]]
        if any(s == "failed" for s in states):
            return False
        if wanted == "service_completed_successfully":
            return True if all(s == "exited 0" for s in states) else None
        if wanted == "service_healthy":
            return True if all(s == "healthy" for s in states) else None
        return True if all(s in ("running", "healthy", "exited 0") for s in states) else None

    def remaining(self):
        return DEADLINE - (time.monotonic() - T0)

    # -- one container ------------------------------------------------------------------------
    def life(self, c):
        try:
            self.live(c)
        except Exception as e:  # a bug here must fail the run, not hang it
            self.set(c, "failed", f"{type(e).__name__}: {e}")

    def live(self, c):
        deps = c.svc.get("depends_on") or {}
        if isinstance(deps, list):
            deps = {d: {"condition": "service_started"} for d in deps}
        deps = {d: v.get("condition", "service_started") for d, v in deps.items() if d in self.stack.services}
        with self.cond:
            while True:
                verdicts = {d: self.condition(d, w) for d, w in deps.items()}
                if all(verdicts.values()):
                    break
                bad = [d for d, v in verdicts.items() if v is False]
                if bad or self.remaining() <= 0 or self.stopping:
                    why = (f"depends on {', '.join(bad)}, which failed" if bad
                           else "its dependencies were not ready in time")
                    self.state[c.name] = "failed"
                    self.reason[c.name] = why
                    self.cond.notify_all()
                    say(f"{c.name}: not started: {why}")
                    return
                self.cond.wait(timeout=1)
        if c.errors:
            for e in c.errors:
                say(f"{c.name}: {e}")
        if not c.runnable:
            self.stand_in(c)
            return
        log = open(os.path.join(self.run_dir, "logs", f"{c.name}.log"), "wb")
        proc = subprocess.Popen(c.argv, env=c.env, cwd=c.cwd, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        with self.cond:
            self.procs[c.name] = proc
            self.started.append(c)
        self.set(c, "running", f"pid {proc.pid}: {self.show(c.argv)}")
        if c.one_shot:
            self.finish(c, proc)
        else:
            self.await_health(c, proc)

    def show(self, argv):
        text = " ".join(json.dumps(a) if " " in a or "\n" in a else a for a in argv)
        return text if len(text) < 160 else text[:157] + "..."

    def finish(self, c, proc):
        try:
            code = proc.wait(timeout=max(1.0, self.remaining()))
        except subprocess.TimeoutExpired:
            self.set(c, "failed", f"still running after the run's deadline\n{self.tail(c)}")
            return
        if code != 0:
            self.set(c, "failed", f"exited with status {code}\n{self.tail(c)}")
            return
        if "/opt/kafka/bin/kafka-topics.sh" in c.image.get("tools", {}):
            problem = self.kafka_topics(c)
            if problem:
                self.set(c, "failed", problem)
                return
        self.set(c, "exited 0")

    def await_health(self, c, proc):
        hc = c.svc.get("healthcheck") or {}
        if c.probe is None:
            self.set(c, "running", "no health check")
            return
        # Docker's bound: the start period, then `retries` failed probes `interval` apart.
        bound = seconds(hc.get("start_period"), 0) + seconds(hc.get("interval"), 30) * int(hc.get("retries", 3))
        deadline = time.monotonic() + min(bound, HEALTH_CAP, max(0.0, self.remaining()))
        timeout = seconds(hc.get("timeout"), 30)
        last, probes = "", 0
        while True:
            if proc.poll() is not None:
                self.set(c, "failed", f"exited with status {proc.returncode} before it was healthy\n{self.tail(c)}")
                return
            probes += 1
            try:
                out = subprocess.run(c.probe, env=c.env, cwd=c.cwd, capture_output=True, timeout=timeout,
                                     stdin=subprocess.DEVNULL)
                if out.returncode == 0:
                    self.set(c, "healthy", f"after {probes} probe(s)")
                    return
                last = f"exit {out.returncode}: {(out.stdout + out.stderr).decode(errors='replace').strip()[-300:]}"
            except subprocess.TimeoutExpired:
                last = f"no answer within {timeout:g}s"
            if time.monotonic() >= deadline or self.stopping:
                self.set(c, "failed", f"not healthy within {min(bound, HEALTH_CAP):g}s ({probes} probes: "
                                      f"{self.show(c.probe)}); last probe: {last}\n{self.tail(c)}")
                return
            time.sleep(POLL)  # the next probe; the deadline above bounds the wait

    def tail(self, c, lines=8):
        try:
            with open(os.path.join(self.run_dir, "logs", f"{c.name}.log"), encoding="utf-8", errors="replace") as f:
                text = f.read().splitlines()[-lines:]
        except OSError:
            return ""
        return "\n".join(f"    | {line[:200]}" for line in text)

    # -- Kafka ----------------------------------------------------------------------------------
    def brokers(self):
        found = {}
        for name, cs in self.stack.services.items():
            env = cs[0].svc.get("environment") or {}
            if isinstance(env, dict) and "KAFKA_NODE_ID" in env:
                for listener in str(env.get("KAFKA_ADVERTISED_LISTENERS", "")).split(","):
                    if listener.startswith("PLAINTEXT://"):
                        found[name] = listener[len("PLAINTEXT://"):]
        return found

    def stand_in(self, c):
        """A Kafka broker: the local broker answers for it; its health check must name a listener."""
        env = c.svc.get("environment") or {}
        listeners = [l.rsplit(":", 1)[-1] for l in str(env.get("KAFKA_LISTENERS", "")).split(",") if l]
        test = " ".join(map(str, (c.svc.get("healthcheck") or {}).get("test", [])))
        if listeners and not any(f"localhost:{p}" in test for p in listeners):
            self.set(c, "failed", f"its health check ({test}) names none of its listeners' ports {listeners}")
            return
        if not self.broker:
            self.set(c, "failed", "no local broker to stand in (LB_KAFKA_BROKERS; scripts/infra.sh up)")
            return
        host, port = self.broker.rsplit(":", 1)
        try:
            socket.create_connection((host, int(port)), timeout=3).close()
        except OSError as e:
            self.set(c, "failed", f"the local broker {self.broker} does not answer: {e}")
            return
        self.set(c, "healthy", f"not run ({c.svc.get('image')} needs a container engine); "
                               f"the local broker {self.broker} stands in")

    def kafka_topics(self, c):
        calls = []
        if os.path.exists(self.record):
            with open(self.record, encoding="utf-8") as f:
                calls = [json.loads(line)["argv"] for line in f if line.strip()]
        apps = {x.name: x.env for x in self.stack.containers() if x.image is self.stack.app_image and x.env}
        errors, created = kafka_init.judge(calls, set(self.brokers().values()), apps)
        if not calls:
            errors.append("made no kafka-topics.sh call")
        if errors:
            return "kafka-topics.sh calls wrong:\n" + "\n".join(f"    - {e}" for e in errors)
        described = [", ".join([f"partitions={v['partitions']}"] + [f"{k}={x}" for k, x in v["configs"].items()])
                     for v in created.values()]
        say(f"{c.name}: {len(calls)} kafka-topics.sh calls right: creates "
            + ", ".join(f"{t} ({d})" for t, d in zip(created, described)))
        # The same topics on the local broker (one broker: replication factor 1), for the apps.
        env = next(iter(apps.values()))
        topic, dlq = env.get("LB_TOPIC"), env.get("LB_DLQ_TOPIC")
        out = subprocess.run(
            [os.path.join(self.bin_dir, "loadgen"), "topics", "--brokers", self.broker, "--topic", topic,
             "--dlq-topic", dlq, "--partitions", str(created[topic]["partitions"]),
             "--dlq-partitions", str(created[dlq]["partitions"])],
            env={"PATH": os.environ["PATH"], "RUST_LOG": "warn"}, capture_output=True, timeout=60)
        if out.returncode != 0:
            return f"creating {topic} and {dlq} on the local broker failed: {out.stderr.decode()[-500:]}"
        return None

    # -- the whole stack ----------------------------------------------------------------------
    def run(self):
        os.makedirs(os.path.join(self.run_dir, "logs"), exist_ok=True)
        threads = [threading.Thread(target=self.life, args=(c,), daemon=True) for c in self.stack.containers()]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=max(0.1, self.remaining() + 5))

    def stop(self):
        QUIET.set()
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
            order = list(reversed(self.started))
        for c in order:
            proc = self.procs[c.name]
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for c in order:
            proc = self.procs[c.name]
            grace = min(seconds(c.svc.get("stop_grace_period"), 10), STOP_CAP)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                print(f"compose-run-check: {c.name} still running {grace:g}s after SIGTERM: killed", flush=True)
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # whatever the container left behind
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()


# -- checks once the stack is up ------------------------------------------------------------------
def redis_cli(port, *args, user=None, password=None, timeout=3):
    env = {"PATH": os.environ["PATH"]}
    if password:
        env["REDISCLI_AUTH"] = password
    argv = ["redis-cli", "-h", "127.0.0.1", "-p", str(port)] + (["--user", user] if user else []) + list(args)
    try:
        out = subprocess.run(argv, env=env, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return ""
    return (out.stdout + out.stderr).decode(errors="replace")


def poll(check, seconds_):
    """check() -> (done, detail) until done or the bound: (done, last detail)."""
    end = time.monotonic() + seconds_
    while True:
        done, detail = check()
        if done or time.monotonic() >= end:
            return done, detail
        time.sleep(POLL)


def check_cluster(stack, passwords):
    nodes = [c for c in stack.containers() if c.runnable and not c.one_shot and c.argv
             and any("cluster-enabled" in a for a in c.argv)]
    if not nodes:
        return []

    def formed():
        bad = []
        for c in nodes:
            info = dict(line.split(":", 1) for line in redis_cli(c.ports[6379], "cluster", "info", user="lb-cluster",
                                                                 password=passwords["LB_REDIS_CLUSTER_PASSWORD"])
                        .replace("\r", "").splitlines() if ":" in line)
            state = (info.get("cluster_state"), info.get("cluster_slots_assigned"), info.get("cluster_known_nodes"))
            if state != ("ok", "16384", str(len(nodes))):
                bad.append(f"{c.name}: cluster_state={state[0]} slots={state[1]} known_nodes={state[2]}")
        return not bad, "; ".join(bad)

    ok, detail = poll(formed, 15)
    if not ok:
        return [f"the Redis Cluster is not formed: {detail}"]
    say(f"cluster: cluster_state:ok, 16384 slots, {len(nodes)} nodes known, on every node")
    # The one-shot that formed it runs again on every `up`: it must leave a formed cluster alone.
    again = [c for c in stack.containers() if c.one_shot and c.argv and any("--cluster create" in a for a in c.argv)]
    for c in again:
        out = subprocess.run(c.argv, env=c.env, cwd=c.cwd, capture_output=True, timeout=30)
        if out.returncode != 0:
            return [f"{c.name}, run again on the formed cluster, exited with status {out.returncode}: "
                    f"{(out.stdout + out.stderr).decode(errors='replace').strip()[-300:]}"]
        say(f"{c.name}: run again, exits 0 and leaves the cluster alone")
    return []


def check_sentinels(stack):
    def runs(c, *words):
        text = " ".join(c.argv or [])
        return c.runnable and not c.one_shot and all(w in text for w in words)

    sentinels = [c for c in stack.containers() if runs(c, "redis-server", "--sentinel")]
    if not sentinels:
        return []
    data = [c for c in stack.containers()
            if runs(c, "redis-server") and c not in sentinels and "cluster-enabled" not in " ".join(c.argv)]

    def seen():
        bad = []
        for c in sentinels:
            port = c.ports[26379]
            reply = redis_cli(port, "sentinel", "master", "lb").replace("\r", "").splitlines()
            fields = dict(zip(reply[::2], reply[1::2]))
            want = {"num-slaves": str(len(data) - 1), "num-other-sentinels": str(len(sentinels) - 1)}
            got = {k: fields.get(k) for k in want}
            if got != want or fields.get("flags") != "master":
                bad.append(f"{c.name}: flags={fields.get('flags')} replicas={got['num-slaves']} "
                           f"other sentinels={got['num-other-sentinels']} (want {want['num-slaves']}, "
                           f"{want['num-other-sentinels']})")
                continue
            replicas = redis_cli(port, "sentinel", "replicas", "lb")
            if replicas.count("master-link-status") and "err" in replicas.split("master-link-status")[1][:12]:
                bad.append(f"{c.name}: a replica's link to the primary is down")
        return not bad, "; ".join(bad)

    ok, detail = poll(seen, 20)
    if ok:
        say(f"sentinels: each of {len(sentinels)} sees the primary, {len(data) - 1} replicas and the other Sentinels")
        return []
    return [f"the Sentinels do not see the group: {detail}"]


def cluster_urls(env):
    """The Redis URLs docs/deployment.md tells an operator to set for the cluster profile."""
    urls = {}
    for role, var in (("ingest", "LB_INGEST_REDIS_URL"), ("api", "LB_API_REDIS_URL"), ("admin", "LB_ADMIN_REDIS_URL")):
        password = env[f"LB_REDIS_{role.upper()}_PASSWORD"]
        urls[var] = ",".join(f"redis://lb-{role}:{password}@redis-cluster-{i}:6379" for i in (1, 2, 3))
    return urls


def add_cluster_variants(stack, raw, interp_env):
    """ingest and the api once more, pointed at the Redis Cluster as the docs say (`@cluster`),
    once the cluster is formed: the cluster profile is only useful if the services can use it."""
    if "redis-cluster-init" not in stack.services:
        return
    env = dict(interp_env, **cluster_urls(interp_env), LB_INGEST_GROUP=interp_env["LB_INGEST_GROUP"] + "-cluster")
    doc = walk_strings(raw, env, [])
    for service in ("ingest", "api"):
        if service not in doc.get("services", {}):
            continue
        svc = dict(doc["services"][service], deploy={"replicas": 1})
        svc["depends_on"] = {"redis-cluster-init": {"condition": "service_completed_successfully"},
                             "kafka-init": {"condition": "service_completed_successfully"}}
        name = f"{service}@cluster"
        c = Container(name, name, 1, svc, stack.app_image)
        c.interp_env = env
        stack.services[name] = [c]


def check_ready(stack):
    """ingest's compose health check is /healthz (alive); each app container must also be ready."""
    apps = [c for c in stack.containers() if c.image is stack.app_image and not c.one_shot and c.probe
            and "/healthz" in c.probe]
    bad = []
    for c in apps:
        probe = [a.replace("/healthz", "/readyz") for a in c.probe]

        def ready(probe=probe, c=c):
            out = subprocess.run(probe, env=c.env, cwd=c.cwd, capture_output=True, timeout=5)
            return out.returncode == 0, (out.stdout + out.stderr).decode(errors="replace").strip()[-200:]

        ok, detail = poll(ready, 20)
        if not ok:
            bad.append(f"{c.name}: not ready (/readyz): {detail}")
    if apps and not bad:
        say(f"ready (/readyz): {', '.join(c.name for c in apps)}")
    return bad


def main(compose_path, bin_dir):
    compose_path = os.path.abspath(compose_path)
    repo = os.path.dirname(compose_path)
    run_dir = os.path.join(repo, "target", "compose-run-check")
    shutil.rmtree(run_dir, ignore_errors=True)
    shim_dir = os.path.join(run_dir, "bin")
    tag = secrets.token_hex(4)
    interp_env = run_environment(tag)
    broker = (os.environ.get("LB_KAFKA_BROKERS") or "").split(",")[0]

    with open(compose_path, encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    errors = []
    doc = walk_strings(raw, interp_env, errors)
    if errors:
        for e in errors:
            say(f"interpolation: {e}")
        print(f"compose-run-check: FAILED: {compose_path} does not interpolate")
        return 1
    profiles = sorted({p for s in doc.get("services", {}).values() for p in s.get("profiles", []) or []})
    app_image = app_image_from_dockerfile(os.path.join(repo, "Dockerfile"))
    stack = Stack(doc, repo, run_dir, app_image, profiles)
    add_cluster_variants(stack, raw, interp_env)

    taken = set()
    for c in stack.containers():
        for port in container_ports(c.svc, c.image or {}):
            c.ports[port] = free_port(taken)
    runner = Runner(stack, run_dir, bin_dir, broker)
    external = {addr: broker for addr in runner.brokers().values()} if broker else {}
    amap_doc = stack.address_doc(shim_dir, external)
    lb_http = os.path.join(shim_dir, "lb-http.real")
    amap_doc.update(real=real_programs(), bin_dir=bin_dir, kafka_record=runner.record, lb_http=lb_http)
    stack.write_shims(shim_dir, sys.executable, os.path.join(HERE, "shim.py"))
    with open(lb_http, "w", encoding="utf-8") as f:
        f.write(app_image["heredocs"].get("/usr/local/bin/lb-http", "#!/bin/bash\nexit 1\n"))
    map_path = os.path.join(run_dir, "addresses.json")
    with open(map_path, "w", encoding="utf-8") as f:
        json.dump(amap_doc, f, indent=1)
    base_env = {"LBCC_MAP": map_path}
    for c in stack.containers():
        if c.image is None:
            c.errors.append(f"image {c.svc.get('image')} is not one this check knows how to stand in for")
            continue
        if not c.runnable:
            continue
        stack.prepare(c, c.interp_env or interp_env, base_env, shim_dir, amap_doc)
    say(f"{len(stack.containers())} containers of {len(stack.services)} services (profiles: default, "
        f"{', '.join(profiles)}), ports mapped to 127.0.0.1, logs in {os.path.relpath(run_dir, repo)}/logs")

    def interrupted(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    failures = []
    interrupted_by = None
    try:
        runner.run()
        failures += [f"{c.name}: {e}" for c in stack.containers() for e in c.errors]
        failures += [f"{name}: {runner.reason.get(name, state)}" for name, state in runner.state.items()
                     if state not in ("healthy", "exited 0", "running")]
        if not failures:
            failures += check_ready(stack)
            failures += check_cluster(stack, interp_env)
            failures += check_sentinels(stack)
    except SystemExit as e:
        interrupted_by = e.code
        failures.append(f"interrupted (exit {e.code}): stopped everything it had started")
    finally:
        runner.stop()
    elapsed = time.monotonic() - T0
    containers = stack.containers()
    healthy = sum(runner.state[c.name] in ("healthy", "exited 0", "running") and not c.errors for c in containers)
    if failures:
        print("compose-run-check: failures:")
        for f in failures:
            print(f"  - {f}")
        print(f"compose-run-check: FAILED: {len(failures)} problem(s); {healthy} of {len(containers)} containers "
              f"started from their compose commands and passed their checks, in {elapsed:.1f}s "
              f"(logs: {os.path.relpath(run_dir, repo)}/logs)")
        return interrupted_by or 1
    stood_in = sum(not c.runnable for c in containers)
    services = [s for s in stack.services if "@" not in s]
    print(f"compose-run-check: passed: {len(containers) - stood_in} containers started from their compose commands "
          f"and healthy ({len(services)} services, profiles default, {', '.join(profiles)}; ingest and api also on the "
          f"Redis Cluster), cluster_state:ok, Sentinels agreed, "
          f"{'loadgen verified, ' if 'loadgen' in stack.services else ''}kafka-init's topics right, "
          f"{stood_in} Kafka brokers stood in by {broker}, in {elapsed:.1f}s")
    shutil.rmtree(run_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
