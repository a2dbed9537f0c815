"""Grants season rewards from the leaderboard's season results, each exactly once.

Reads the results topic (docs/contract.md, "Season results"): one record per closed season,
delivered at least once, with a stable `id` (<board>/<season>) and a `revision` that an amendment
(an erasure or a ban out of the closed season) raises. Rewards are granted in SQLite in the same
transaction that records which revision of which result was applied, and the Kafka offset is
committed only after that transaction. So a repeated record, a crash between the grant and the
commit, or a replay of the topic from its start grants nothing twice, and a higher revision
replaces the season's grants (a banned player's reward is taken back).

Configuration, from the environment:
  LB_KAFKA_BROKERS          bootstrap servers, e.g. 127.0.0.1:9092
  LB_SEASON_RESULTS_TOPIC   the results topic (default: scores.seasons)
  LB_REWARDS_GROUP          this service's consumer group (default: rewards)
  LB_REWARDS_DB             the SQLite file (default: rewards.db)

Usage: rewards.py [--top N] [--records N] [--timeout SECONDS]
  --top: the rows of each season rewarded (default 3)
  --records: stop after this many records (scripts); default: run until SIGTERM
  --timeout: with --records, fail (exit 1) if they have not all come in this long (default 120)
Prints one line per result: applied, or skipped as a repeat.
"""

import argparse
import json
import os
import signal
import sqlite3
import sys
import time

from confluent_kafka import Consumer, KafkaException

SCHEMA = """
CREATE TABLE IF NOT EXISTS applied (result_id TEXT PRIMARY KEY, revision INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS grants (
    result_id TEXT NOT NULL, player TEXT NOT NULL, rank INTEGER NOT NULL, reward TEXT NOT NULL,
    PRIMARY KEY (result_id, player)
);
"""
REWARDS = ["gold", "silver", "bronze"]


def reward_for(rank):
    return REWARDS[rank - 1] if rank <= len(REWARDS) else "top"


def apply(db, result, top):
    """Grants `result`'s rewards unless this revision (or a later one) was applied: True if granted.

    One transaction: the grants and the applied revision commit together or not at all.
    """
    with db:
        row = db.execute("SELECT revision FROM applied WHERE result_id = ?", (result["id"],)).fetchone()
        if row is not None and row[0] >= result["revision"]:
            return False
        db.execute("DELETE FROM grants WHERE result_id = ?", (result["id"],))
        for entry in result["top"]:
            if entry["rank"] > top:
                break
            db.execute(
                "INSERT INTO grants (result_id, player, rank, reward) VALUES (?, ?, ?, ?)",
                (result["id"], entry["player"], entry["rank"], reward_for(entry["rank"])),
            )
        db.execute(
            "INSERT INTO applied (result_id, revision) VALUES (?, ?) "
            "ON CONFLICT(result_id) DO UPDATE SET revision = excluded.revision",
            (result["id"], result["revision"]),
        )
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=3)
    parser.add_argument("--records", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    db = sqlite3.connect(os.environ.get("LB_REWARDS_DB", "rewards.db"))
    db.executescript(SCHEMA)
    consumer = Consumer({
        "bootstrap.servers": os.environ["LB_KAFKA_BROKERS"],
        "group.id": os.environ.get("LB_REWARDS_GROUP", "rewards"),
        "auto.offset.reset": "earliest",
        # Offsets are committed by hand, after the grants are: never before.
        "enable.auto.commit": False,
    })
    consumer.subscribe([os.environ.get("LB_SEASON_RESULTS_TOPIC", "scores.seasons")])
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    deadline = time.monotonic() + args.timeout
    seen = 0
    try:
        while not stopping and (args.records is None or seen < args.records):
            if args.records is not None and time.monotonic() > deadline:
                print(f"only {seen} of {args.records} results came in {args.timeout:.0f} s", file=sys.stderr)
                return 1
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error():
                # Fatal errors end the service; others (a broker restarting, a topic not created
                # yet) are the client's to retry.
                if message.error().fatal():
                    raise KafkaException(message.error())
                print(f"kafka: {message.error()}", file=sys.stderr, flush=True)
                continue
            seen += 1
            result = json.loads(message.value())
            granted = apply(db, result, args.top)
            consumer.commit(message=message, asynchronous=False)
            what = "applied" if granted else "skipped (a repeat)"
            print(f"{result['id']} revision {result['revision']}: {what}", flush=True)
    finally:
        consumer.close()
        db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
