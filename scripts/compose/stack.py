"""Each compose service as the process its container would run (scripts/compose/README.md).

From the interpolated compose file and the images' definitions this builds, per container: the
argv Docker would exec (entrypoint + command, with Compose's rules), its environment (image, then
service), its mounts (named volumes and bind mounts, the mounted files with the network's
addresses mapped to this machine's), its working directory, its ports and its health check. It
also finds the defects a container engine would only show at run time: a shell `-c` entrypoint
given a command list (only the first item runs), a variable a script uses that its container does
not set, a path neither the image nor a mount provides.
"""

import json
import os
import re
import shlex
import shutil

from shim import AddressMap

# What the images this stack uses provide, besides what run_check.py reads from the Dockerfile.
# `tools`: container paths of programs, each run by the shim of that name; `runnable` False when
# no local stand-in exists (the Kafka brokers: a JVM image).
IMAGES = {
    "redis": {
        "entrypoint": ["docker-entrypoint.sh"], "cmd": ["redis-server"], "workdir": "/data",
        "ports": [6379], "env": {},
        "tools": {"/usr/local/bin/redis-server": "redis-server", "/usr/local/bin/redis-cli": "redis-cli",
                  "/usr/local/bin/redis-sentinel": "redis-sentinel"},
    },
    "apache/kafka": {
        "entrypoint": ["/__cacert_entrypoint.sh"], "cmd": ["/etc/kafka/docker/run"], "workdir": "/",
        "ports": [9092], "env": {}, "runnable": False,
        "tools": {"/opt/kafka/bin/kafka-topics.sh": "kafka-topics.sh"},
    },
    "prom/prometheus": {
        "entrypoint": ["/bin/prometheus"], "cmd": ["--config.file=/etc/prometheus/prometheus.yml"],
        "workdir": "/prometheus", "ports": [9090], "env": {},
        "tools": {"/bin/prometheus": "prometheus", "/bin/wget": "wget"},
    },
}
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Paths every Debian-based image has and that mean the same here.
SYSTEM_PATHS = ("/bin/sh", "/bin/bash", "/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tcp")
ABS_PATH = re.compile(r"(?:^|(?<=[\s\"'=(<>]))(/[\w.-]+(?:/[\w.-]*)*)")
SHELL_VAR = re.compile(r"\$(?:\{([A-Za-z_]\w*)(:?[-?+=])?|([A-Za-z_]\w*))")
SHELL_ASSIGN = re.compile(r"(?:^|[\s;(])(?:export\s+|local\s+|readonly\s+)?([A-Za-z_]\w*)="
                          r"|\bfor\s+([A-Za-z_]\w*)\s+in\b|\bread\s+(?:-\w+\s+)*([A-Za-z_]\w*)")
DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def seconds(text, default):
    """Compose durations: `1m30s`, `500ms`, `10s`."""
    if text is None:
        return default
    total = sum(float(n) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[u] for n, u in DURATION.findall(str(text)))
    return total or default


def image_of(svc, app_image):
    if "build" in svc:
        return app_image
    name = svc.get("image", "").split("@")[0].rsplit(":", 1)[0]
    for key, image in IMAGES.items():
        if name == key or name.endswith("/" + key) or name.split("/")[-1] == key:
            return image
    return None


def app_image_from_dockerfile(path):
    """ENTRYPOINT, CMD, WORKDIR, ENV, EXPOSE and the lb-http heredoc of the Dockerfile's last stage."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    image = {"entrypoint": [], "cmd": [], "workdir": "/", "env": {}, "ports": [], "tools": {}, "heredocs": {}}
    i, logical = 0, []
    while i < len(lines):
        line = lines[i]
        heredoc = re.match(r"COPY\b.*<<'?(\w+)'?\s+(\S+)\s*$", line)
        if heredoc:
            end, target = heredoc.groups()
            body = []
            i += 1
            while i < len(lines) and lines[i] != end:
                body.append(lines[i])
                i += 1
            image["heredocs"][target] = "\n".join(body) + "\n"
        elif line.startswith("FROM "):
            image.update(entrypoint=[], cmd=[], env={}, ports=[], heredocs={})
            logical = []
        else:
            logical.append(line)
            if not line.rstrip().endswith("\\"):
                apply_instruction(image, " ".join(l.rstrip().rstrip("\\") for l in logical))
                logical = []
        i += 1
    for target in image["heredocs"]:
        image["tools"][target] = os.path.basename(target)
    image["tools"]["/usr/bin/tini"] = "tini"
    for binary in ("api", "ingest", "loadgen", "lb-admin"):
        image["tools"][f"/usr/local/bin/{binary}"] = binary
    return image


def apply_instruction(image, text):
    word, _, rest = text.strip().partition(" ")
    rest = rest.strip()
    if word == "ENTRYPOINT":
        image["entrypoint"] = json.loads(rest)
    elif word == "CMD":
        image["cmd"] = json.loads(rest)
    elif word == "WORKDIR":
        image["workdir"] = rest
    elif word == "EXPOSE":
        image["ports"] = [int(p.split("/")[0]) for p in rest.split()]
    elif word == "ENV":
        for pair in shlex.split(rest):
            key, _, value = pair.partition("=")
            image["env"][key] = value


def as_argv(value):
    if value is None:
        return None
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def container_ports(svc, image):
    ports = set(image.get("ports", []))
    for p in svc.get("expose", []) or []:
        ports.add(int(str(p).split("/")[0]))
    for p in svc.get("ports", []) or []:
        target = p.get("target") if isinstance(p, dict) else str(p).split(":")[-1].split("/")[0]
        ports.add(int(target))
    return sorted(ports)


class Container:
    """One replica of one service, as it would run."""

    def __init__(self, name, service, index, svc, image):
        self.name, self.service, self.index = name, service, index
        self.svc, self.image = svc, image
        self.ports = {}  # container port -> local port
        self.paths = []  # (container path, local path), longest first
        self.argv, self.env, self.cwd, self.probe = None, None, None, None
        self.interp_env = None  # the .env of a variant (run_check.add_cluster_variants)
        self.errors = []

    @property
    def runnable(self):
        # An image that cannot run here still can when the service gives its own entrypoint
        # (kafka-init: a shell script around kafka-topics.sh).
        return self.image is not None and (self.image.get("runnable", True) or "entrypoint" in self.svc)

    @property
    def one_shot(self):
        return str(self.svc.get("restart", "no")) == "no"

    def local_path(self, text):
        for cpath, lpath in self.paths:
            text = re.sub(rf"(?<![\w.-]){re.escape(cpath)}(?=[/\s\"';:)|&<>]|$)", lambda _m, l=lpath: l, text)
        return text


def lint_shell_command(c, entrypoint, command):
    """A `sh -c`/`bash -c` entrypoint runs its first argument as the script: a command list
    longer than one item runs its first item alone, the rest becoming $0, $1, ..."""
    if not entrypoint or os.path.basename(entrypoint[0]) not in ("sh", "bash", "dash"):
        return
    flags = [a for a in entrypoint[1:] if a.startswith("-")]
    if not any("c" in f.lstrip("-") for f in flags) or len(entrypoint) > 1 + len(flags):
        return
    if command and len(command) > 1:
        c.errors.append(f"entrypoint {json.dumps(entrypoint)} runs only the first item of its {len(command)}-item "
                        f"command ({command[0]!r}); the other items become $0, $1, ... and are ignored")


def lint_variables(c, script, env, what):
    """Every $VAR a script expands must be set in the container or in the script itself."""
    assigned = {g for m in SHELL_ASSIGN.finditer(script) for g in m.groups() if g}
    special = {"PATH", "HOME", "HOSTNAME", "PWD", "IFS", "OPTARG", "OPTIND", "RANDOM", "REPLY"}
    for m in SHELL_VAR.finditer(script):
        name = m.group(1) or m.group(3)
        guarded = m.group(2) is not None
        if guarded or name in assigned or name in special or name in env:
            continue
        c.errors.append(f"{what} expands ${name}, which its container does not set")


def lint_paths(c, texts):
    known = [p for p, _ in c.paths] + list(c.image.get("tools", {})) + list(SYSTEM_PATHS)
    for text in texts:
        for path in ABS_PATH.findall(text):
            if not any(path == k or path.startswith(k.rstrip("/") + "/") for k in known):
                c.errors.append(f"uses {path}, which neither its image nor a mount provides")


class Stack:
    """The containers of the selected profiles and where they live on this machine."""

    def __init__(self, doc, compose_dir, run_dir, app_image, profiles):
        self.doc, self.compose_dir, self.run_dir = doc, compose_dir, run_dir
        self.app_image, self.profiles = app_image, profiles
        self.services = {}  # service -> [Container]
        for name, svc in doc.get("services", {}).items():
            wanted = svc.get("profiles")
            if wanted and not set(wanted) & set(profiles):
                continue
            image = image_of(svc, app_image)
            replicas = int((svc.get("deploy") or {}).get("replicas", 1) or 1)
            self.services[name] = [
                Container(name if replicas == 1 else f"{name}-{i}", name, i, svc, image) for i in range(1, replicas + 1)
            ]

    def containers(self):
        return [c for cs in self.services.values() for c in cs]

    def address_doc(self, shim_dir, external):
        ports = {}
        for service, cs in self.services.items():
            for c in cs:
                ports[c.name] = c.ports
            ports.setdefault(service, cs[0].ports)  # the service's name resolves to a replica
        return {"ports": ports, "external": external, "shim_dir": shim_dir}

    def prepare(self, c, interp_env, base_env, shim_dir, amap_doc):
        """argv, env, working directory, mounts and probe of c; records what cannot work."""
        svc, image = c.svc, c.image
        amap = AddressMap(amap_doc, c.name)
        home = os.path.join(self.run_dir, "containers", c.name)
        os.makedirs(home, exist_ok=True)
        # Mounts: named volumes are shared directories; bind-mounted files are copied with the
        # network's addresses mapped, and their container paths mapped like the command's.
        binds = []
        for mount in svc.get("volumes", []) or []:
            source, target = (mount.split(":")[:2] if isinstance(mount, str)
                              else (mount.get("source", ""), mount.get("target", "")))
            if source.startswith((".", "/")):
                binds.append((os.path.normpath(os.path.join(self.compose_dir, source)), target))
            else:
                local = os.path.join(self.run_dir, "volumes", source)
                os.makedirs(local, exist_ok=True)
                c.paths.append((target, local))
        for source, target in binds:
            local = os.path.join(home, "mounts", target.strip("/").replace("/", "_"))
            c.paths.append((target, local))
        for cpath, tool in image.get("tools", {}).items():
            c.paths.append((cpath, os.path.join(shim_dir, tool)))
        c.paths.sort(key=lambda p: len(p[0]), reverse=True)
        for source, target in binds:
            local = c.local_path(target)
            os.makedirs(os.path.dirname(local), exist_ok=True)
            if os.path.isdir(source):
                os.symlink(source, local)
            else:
                with open(source, encoding="utf-8") as f:
                    text = f.read()
                with open(local, "w", encoding="utf-8") as f:
                    f.write(c.local_path(amap.text(text, spaced=True)))
        workdir = svc.get("working_dir") or image.get("workdir", "/")
        c.cwd = c.local_path(workdir)
        if c.cwd == workdir:
            c.cwd = os.path.join(home, "root", workdir.strip("/"))
        os.makedirs(c.cwd, exist_ok=True)

        # Environment: the image's, then the service's (a key without value is passed from the
        # shell or .env when set there, as Compose does).
        env = dict(base_env)
        env.update(image.get("env", {}))
        service_env = svc.get("environment") or {}
        if isinstance(service_env, list):
            service_env = dict(e.split("=", 1) if "=" in e else (e, None) for e in service_env)
        for key, value in service_env.items():
            if value is None:
                if key in interp_env:
                    env[key] = interp_env[key]
                continue
            env[key] = "" if value is None else str(value)
        for key in list(env):
            env[key] = amap.text(env[key])
        env.update(PATH=f"{shim_dir}:{BASE_PATH}", HOME=home, HOSTNAME=c.name, LBCC_SELF=c.name)

        # argv: the service's entrypoint replaces the image's and drops the image's CMD.
        entrypoint = as_argv(svc.get("entrypoint"))
        command = as_argv(svc.get("command"))
        if entrypoint is None:
            entrypoint = list(image.get("entrypoint", []))
            command = command if command is not None else list(image.get("cmd", []))
        else:
            command = command or []
        lint_shell_command(c, entrypoint, command)
        argv = entrypoint + command
        if not argv:
            c.errors.append("has no entrypoint and no command")
            return
        lint_paths(c, argv)
        if os.path.basename(argv[0]) in ("sh", "bash") and len(argv) > 2:
            script = next((a for a in argv[1:] if not a.startswith("-")), "")
            lint_variables(c, script, env, "its command")
        c.argv = [c.local_path(a) for a in argv]
        c.env = env

        test = (svc.get("healthcheck") or {}).get("test")
        if isinstance(test, str):
            test = ["CMD-SHELL", test]
        if test and test[0] == "CMD-SHELL":
            lint_variables(c, test[1], env, "its health check")
            c.probe = ["/bin/sh", "-c", c.local_path(test[1])]
        elif test and test[0] == "CMD":
            c.probe = [c.local_path(a) for a in test[1:]]

    def write_shims(self, shim_dir, python, shim_py):
        """One executable per program the containers run, each calling shim.main(its name)."""
        os.makedirs(shim_dir, exist_ok=True)
        names = {"redis-server", "redis-sentinel", "redis-cli", "kafka-topics.sh", "api", "ingest", "loadgen",
                 "lb-admin", "lb-http", "tini", "prometheus", "wget", "docker-entrypoint.sh"}
        for name in names:
            path = os.path.join(shim_dir, name)
            if name == "docker-entrypoint.sh":
                # The redis image's entrypoint, less its chown and privilege drop.
                body = '#!/bin/sh\ncase "$1" in -* | *.conf) set -- redis-server "$@" ;; esac\nexec "$@"\n'
            else:
                body = f"#!{python}\nimport sys\nsys.dont_write_bytecode = True\n" \
                       f"sys.path.insert(0, {os.path.dirname(shim_py)!r})\n" \
                       f"import shim\nshim.main({name!r})\n"
            with open(path, "w", encoding="utf-8") as f:
                f.write(body)
            os.chmod(path, 0o755)


def real_programs():
    found = {}
    for name in ("redis-server", "redis-cli", "prometheus", "wget", "bash"):
        found[name] = shutil.which(name, path=BASE_PATH) or ""
    return found
