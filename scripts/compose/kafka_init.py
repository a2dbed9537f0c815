"""Judges the kafka-topics.sh calls kafka-init made (recorded by shim.py): no Kafka image runs here.

A call is right when it names only options kafka-topics.sh has, bootstraps from the brokers'
advertised listeners, and, for `--create`: is safe to rerun (`--if-not-exists`), has partitions,
a replication factor the brokers can hold and a `min.insync.replicas` below it (one broker may
die), and known topic configs. Every topic an app service uses must be created, the players log
compacted.
"""

import re

OPTIONS_WITH_VALUE = {
    "--bootstrap-server", "--topic", "--partitions", "--replication-factor", "--config", "--delete-config",
    "--command-config", "--replica-assignment", "--topic-id",
}
FLAGS = {
    "--create", "--describe", "--alter", "--delete", "--list", "--if-not-exists", "--if-exists",
    "--exclude-internal", "--under-replicated-partitions", "--unavailable-partitions",
    "--under-min-isr-partitions", "--at-min-isr-partitions", "--topics-with-overrides", "--help", "--version",
}
TOPIC_CONFIGS = {
    "cleanup.policy": re.compile(r"^(delete|compact|compact,delete|delete,compact)$"),
    "min.insync.replicas": re.compile(r"^\d+$"),
    "retention.ms": re.compile(r"^-?\d+$"),
    "retention.bytes": re.compile(r"^-?\d+$"),
    "segment.ms": re.compile(r"^\d+$"),
    "segment.bytes": re.compile(r"^\d+$"),
    "min.compaction.lag.ms": re.compile(r"^\d+$"),
    "max.compaction.lag.ms": re.compile(r"^\d+$"),
    "delete.retention.ms": re.compile(r"^\d+$"),
    "max.message.bytes": re.compile(r"^\d+$"),
    "compression.type": re.compile(r"^(uncompressed|zstd|lz4|snappy|gzip|producer)$"),
}
# The app variables naming topics, and the config each topic needs.
APP_TOPICS = {"LB_TOPIC": {}, "LB_DLQ_TOPIC": {}, "LB_PLAYERS_TOPIC": {"cleanup.policy": "compact"},
              "LB_SEASON_RESULTS_TOPIC": {}}


def parse(argv):
    opts, errors, i = {"--config": []}, [], 0
    while i < len(argv):
        arg = argv[i]
        if arg in OPTIONS_WITH_VALUE:
            if i + 1 >= len(argv):
                errors.append(f"{arg} without a value")
                break
            if arg == "--config":
                opts["--config"].append(argv[i + 1])
            else:
                opts[arg] = argv[i + 1]
            i += 2
        elif arg in FLAGS:
            opts[arg] = True
            i += 1
        else:
            errors.append(f"unknown argument {arg!r}")
            i += 1
    return opts, errors


def judge(calls, brokers, app_envs):
    """calls: argv lists; brokers: {advertised host:port}; app_envs: the app services' environments.
    Returns (errors, created): created is {topic: {"partitions": n, "configs": {...}}}."""
    errors, created = [], {}
    for argv in calls:
        opts, errs = parse(argv)
        where = "kafka-topics.sh " + " ".join(argv[:6]) + (" ..." if len(argv) > 6 else "")
        errors += [f"{where}: {e}" for e in errs]
        servers = set(filter(None, str(opts.get("--bootstrap-server", "")).split(",")))
        if not servers:
            errors.append(f"{where}: no --bootstrap-server")
        elif servers - brokers:
            errors.append(f"{where}: bootstraps from {sorted(servers - brokers)}, no broker's advertised listener "
                          f"(the brokers: {sorted(brokers)})")
        topic = opts.get("--topic")
        if not opts.get("--create"):
            continue
        if not topic:
            errors.append(f"{where}: --create without --topic")
            continue
        if not opts.get("--if-not-exists"):
            errors.append(f"{where}: --create without --if-not-exists fails on the second `up`")
        partitions = str(opts.get("--partitions", ""))
        factor = str(opts.get("--replication-factor", ""))
        if not partitions.isdigit() or int(partitions) < 1:
            errors.append(f"{topic}: --partitions {partitions or '(missing)'}")
        if not factor.isdigit() or not 1 <= int(factor) <= len(brokers):
            errors.append(f"{topic}: --replication-factor {factor or '(missing)'} with {len(brokers)} brokers")
        configs = {}
        for pair in opts["--config"]:
            key, _, value = pair.partition("=")
            check = TOPIC_CONFIGS.get(key)
            if check is None:
                errors.append(f"{topic}: unknown topic config {key}")
            elif not check.match(value):
                errors.append(f"{topic}: {key}={value} is not a valid value")
            configs[key] = value
        isr = configs.get("min.insync.replicas")
        if factor.isdigit() and isr and isr.isdigit() and not 1 <= int(isr) < int(factor):
            errors.append(f"{topic}: min.insync.replicas={isr} leaves no broker to lose "
                          f"with replication factor {factor}")
        created[topic] = {"partitions": int(partitions) if partitions.isdigit() else 0, "configs": configs}
    for var, needs in APP_TOPICS.items():
        for service, env in app_envs.items():
            topic = env.get(var)
            if topic is None:
                continue
            if topic not in created:
                errors.append(f"{service} uses {var}={topic}, which kafka-init does not create")
                continue
            for key, value in needs.items():
                if created[topic]["configs"].get(key) != value:
                    errors.append(f"{topic} ({var}) needs {key}={value}")
    return errors, created
