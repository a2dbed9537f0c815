"""Validates docker-compose.yml as `docker compose config` would (see README.md)."""

import json
import os
import re
import sys

import jsonschema
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
# `$$`, or `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?error}`, `${NAME?error}` whose
# default holds no further `${`: nested ones are resolved innermost first.
VAR = re.compile(r"\$(\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^{}$]*))?\})")
ESCAPED = "\0"


def interpolate(text, env, errors):
    def sub(m):
        if m.group(1) == "$":
            return ESCAPED
        name, op, arg = m.group(2), m.group(3), m.group(4)
        value = env.get(name)
        if op == ":-" and not value:
            return arg
        if op == "-" and value is None:
            return arg
        if op in (":?", "?") and (value is None or (op == ":?" and not value)):
            errors.append(f"${{{name}}} is required: {arg}")
            return ""
        if value is None:
            errors.append(f"${{{name}}} has no default and is not set")
            return ""
        return value

    while True:
        resolved = VAR.sub(sub, text)
        if resolved == text:
            return resolved.replace(ESCAPED, "$")
        text = resolved


def walk_strings(node, env, errors):
    if isinstance(node, dict):
        return {k: walk_strings(v, env, errors) for k, v in node.items()}
    if isinstance(node, list):
        return [walk_strings(v, env, errors) for v in node]
    if isinstance(node, str):
        return interpolate(node, env, errors)
    return node


def check_references(doc, base, errors):
    services = doc.get("services", {})
    volumes = doc.get("volumes", {}) or {}
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        for dep in deps if isinstance(deps, (list, dict)) else []:
            if dep not in services:
                errors.append(f"{name}: depends_on names no service: {dep}")
        for mount in svc.get("volumes", []):
            source = mount.split(":")[0] if isinstance(mount, str) else mount.get("source", "")
            if source.startswith((".", "/")):
                if not os.path.exists(os.path.join(base, source)):
                    errors.append(f"{name}: bind mount source missing: {source}")
            elif source and source not in volumes:
                errors.append(f"{name}: named volume not declared: {source}")
    brokers = {n: s for n, s in services.items() if "KAFKA_NODE_ID" in (s.get("environment") or {})}
    for name, svc in brokers.items():
        env = svc["environment"]
        voters = {v.split("@")[0] for v in str(env.get("KAFKA_CONTROLLER_QUORUM_VOTERS", "")).split(",")}
        ids = {str(b["environment"]["KAFKA_NODE_ID"]) for b in brokers.values()}
        if voters != ids:
            errors.append(f"{name}: quorum voters {sorted(voters)} are not the brokers {sorted(ids)}")


def main(path):
    base = os.path.dirname(os.path.abspath(path))
    with open(path, encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    errors = []
    doc = walk_strings(raw, os.environ, errors)
    doc = {k: v for k, v in doc.items() if not k.startswith("x-")}
    with open(os.path.join(HERE, "compose-spec.json"), encoding="utf-8") as f:
        schema = json.load(f)
    validator = jsonschema.Draft7Validator(schema)
    for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.path)):
        errors.append(f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}")
    check_references(doc, base, errors)
    for e in errors:
        print(f"compose-check: {e}", file=sys.stderr)
    if errors:
        return 1
    print(f"compose-check: {path} is valid ({len(doc.get('services', {}))} services)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docker-compose.yml"))
