"""The container's tools, on this machine (scripts/compose/README.md, "Running the stack").

scripts/compose/run_check.py runs each compose service's own entrypoint and command with a
directory of these shims first on its PATH (and in place of the image paths that name them).
Each shim is this file under another name; it maps the addresses the compose network knows
(`redis-1:6379`, `sentinel-2 26379`, the service's own `localhost:9090`) to the loopback ports
the run gave each service, then runs the real program:

    redis-server, redis-sentinel   the local redis-server, listening on the service's own port,
                                   on 127.0.0.1 only
    redis-cli                      the local redis-cli, at the mapped address
    kafka-topics.sh                no Kafka here: records its arguments for run_check.py to judge,
                                   answers like the real one would and exits 0
    api, ingest, loadgen, lb-admin the workspace's binaries (target/debug)
    lb-http                        the image's lb-http (taken from the Dockerfile), at the mapped port
    tini                           runs its arguments (PID 1 duties do not apply here)
    prometheus                     the local prometheus, on the service's own port
    wget                           the local wget, at the mapped address

The map is the JSON file in $LBCC_MAP; $LBCC_SELF names the service (replica) the shim runs in.
Standard library only: it runs under whatever python the run found.
"""

import json
import os
import re
import sys

LOOPBACK = "127.0.0.1"
SELF_HOSTS = ("localhost", "127.0.0.1", "0.0.0.0", "")
# host:port, with a host that is a name or an address (the empty host of `:9092` included).
HOST_PORT = re.compile(r"(?<![\w.-])([A-Za-z0-9][\w.-]*|)?:(\d{2,5})(?![\w.])")


class AddressMap:
    """Where each service's container ports are on this machine."""

    def __init__(self, doc, self_name):
        self.ports = {s: {int(c): h for c, h in p.items()} for s, p in doc["ports"].items()}
        self.external = doc.get("external", {})  # "kafka-1:9092" -> "127.0.0.1:9092"
        self.self_name = self_name
        self.names = set(self.ports) | {a.rsplit(":", 1)[0] for a in self.external}

    def own(self, port):
        return self.ports.get(self.self_name, {}).get(int(port))

    def lookup(self, host, port):
        """The local address of host:port, or None when the compose network does not know it."""
        if host in SELF_HOSTS and self.own(port):
            return f"{LOOPBACK}:{self.own(port)}"
        if f"{host}:{port}" in self.external:
            return self.external[f"{host}:{port}"]
        mapped = self.ports.get(host, {}).get(int(port))
        return f"{LOOPBACK}:{mapped}" if mapped else None

    def text(self, text, spaced=False):
        """Maps every `host:port` (and, with spaced, `host port` of a service) in text."""

        def colon(m):
            host = m.group(1) or ""
            found = self.lookup(host, m.group(2))
            return found if found else m.group(0)

        text = HOST_PORT.sub(colon, text)
        if spaced:
            for name in sorted(self.names, key=len, reverse=True):
                pattern = re.compile(rf"(?<![\w.-]){re.escape(name)} (\d{{2,5}})(?![\w.])")
                text = pattern.sub(lambda m, n=name: self.spaced(n, m), text)
        return text

    def spaced(self, name, m):
        found = self.lookup(name, m.group(1))
        return found.replace(":", " ") if found else m.group(0)

    def args(self, argv):
        """Maps a program's arguments: `host:port`, `host port`, and a bare service name."""
        out = []
        i = 0
        while i < len(argv):
            arg = argv[i]
            if arg in self.names:
                nxt = argv[i + 1] if i + 1 < len(argv) else ""
                found = self.lookup(arg, nxt) if nxt.isdigit() else None
                if found:
                    out.extend(found.split(":"))
                    i += 2
                    continue
                out.append(LOOPBACK)
            else:
                out.append(self.text(arg))
            i += 1
        return out


def load():
    with open(os.environ["LBCC_MAP"], encoding="utf-8") as f:
        doc = json.load(f)
    return doc, AddressMap(doc, os.environ.get("LBCC_SELF", ""))


def run(path, argv):
    sys.stdout.flush()
    os.execv(path, [path] + argv)


def redis_server(doc, amap, argv, sentinel=False):
    port = amap.own(26379 if sentinel or "--sentinel" in argv else 6379)
    if port is None:
        sys.exit(f"shim redis-server: {amap.self_name} exposes no Redis port")
    extra = ["--sentinel"] if sentinel else []
    run(doc["real"]["redis-server"], amap.args(argv) + extra + ["--port", str(port), "--bind", LOOPBACK])


def redis_cli(doc, amap, argv):
    host, port, rest = None, None, []
    i = 0
    while i < len(argv):
        if argv[i] == "-h" and i + 1 < len(argv):
            host, i = argv[i + 1], i + 2
        elif argv[i] == "-p" and i + 1 < len(argv):
            port, i = argv[i + 1], i + 2
        else:
            rest.append(argv[i])
            i += 1
    found = amap.lookup(host or "localhost", port or "6379")
    if found is None:
        sys.exit(f"shim redis-cli: {host or 'localhost'}:{port or 6379} is no address of the compose network")
    h, p = found.rsplit(":", 1)
    run(doc["real"]["redis-cli"], ["-h", h, "-p", p] + amap.args(rest))


def kafka_topics(doc, amap, argv):
    with open(doc["kafka_record"], "a", encoding="utf-8") as f:
        f.write(json.dumps({"service": amap.self_name, "argv": argv}) + "\n")
    if "--describe" in argv and "--topic" in argv:
        topic = argv[argv.index("--topic") + 1]
        print(f"Topic: {topic}\t(kafka-topics.sh stand-in of scripts/compose/run_check.py)")


def main(name):
    argv = sys.argv[1:]
    doc, amap = load()
    if name == "redis-server":
        redis_server(doc, amap, argv)
    elif name == "redis-sentinel":
        redis_server(doc, amap, argv, sentinel=True)
    elif name == "redis-cli":
        redis_cli(doc, amap, argv)
    elif name == "kafka-topics.sh":
        kafka_topics(doc, amap, argv)
    elif name in ("api", "ingest", "loadgen", "lb-admin"):
        run(os.path.join(doc["bin_dir"], name), amap.args(argv))
    elif name == "lb-http":
        port = amap.own(argv[0]) if argv and argv[0].isdigit() else None
        run(doc["real"]["bash"], [doc["lb_http"], str(port or argv[0])] + argv[1:])
    elif name == "tini":
        run_args = argv[1:] if argv[:1] == ["--"] else argv
        path = next((os.path.join(d, run_args[0]) for d in os.environ["PATH"].split(":")
                     if os.access(os.path.join(d, run_args[0]), os.X_OK)), run_args[0])
        run(path, run_args[1:])
    elif name == "prometheus":
        port = amap.own(9090)
        kept = [a for a in amap.args(argv) if not a.startswith("--web.listen-address")]
        run(doc["real"]["prometheus"], kept + [f"--web.listen-address={LOOPBACK}:{port}"])
    elif name == "wget":
        run(doc["real"]["wget"], amap.args(argv))
    else:
        sys.exit(f"shim: no stand-in for {name}")


if __name__ == "__main__":
    main(os.path.basename(sys.argv[0]))
