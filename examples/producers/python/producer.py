"""Publishes signed score events to the leaderboard's Kafka topic.

The event and the signature follow docs/contract.md ("Score event", "Signed
events"); docs/producers.md walks through this file. A game server keeps one
ScoreProducer for its lifetime and calls publish() when a game ends.

Configuration, from the environment:
  LB_KAFKA_BROKERS     bootstrap servers, e.g. 127.0.0.1:9092
  LB_TOPIC             the scores topic (default: scores)
  LB_PRODUCER_KEY_ID   this game server's key id (the lb-key-id header)
  LB_PRODUCER_KEY      its secret, hex (ingest holds it as --producer-keys id:hex)

Usage: producer.py [--board BOARD] [--meta JSON] [--ts MS] PLAYER=SCORE [PLAYER=SCORE ...]
  --meta: a JSON object of at most 512 bytes shown beside each score (a name, a country)
  --ts: when the games ended, in ms since the epoch (default: now); it decides their season
Exits 0 once the broker has acknowledged every event, 1 otherwise.
"""

import argparse
import hashlib
import hmac
import json
import os
import re
import signal
import sys
import time
import uuid

from confluent_kafka import KafkaException, Producer

PLAYER_ID = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")
BOARD_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MAX_SCORE = 2**53 - 1
MAX_META_BYTES = 512


def encode_meta(meta):
    """`meta` as compact JSON text: a dict of at most 512 bytes so encoded (else ValueError)."""
    if not isinstance(meta, dict):
        raise ValueError(f"meta must be a JSON object, got {type(meta).__name__}")
    text = json.dumps(meta, separators=(",", ":"), ensure_ascii=False)
    if len(text.encode()) > MAX_META_BYTES:
        raise ValueError(f"meta must be at most {MAX_META_BYTES} bytes of JSON, got {len(text.encode())}")
    return text


def encode_event(player, score, board=None, ts_ms=None, event_id=None, meta=None):
    """The record value: compact JSON of the event, as bytes (these exact bytes are signed)."""
    if not PLAYER_ID.fullmatch(player):
        raise ValueError(f"player must be 1 to 64 of [A-Za-z0-9_.:@-], got {player!r}")
    if board is not None and not BOARD_ID.fullmatch(board):
        raise ValueError(f"board must be 1 to 64 of [A-Za-z0-9_.-], got {board!r}")
    if type(score) is not int or not 0 <= score <= MAX_SCORE:
        raise ValueError(f"score must be an integer from 0 to 2^53-1, got {score!r}")
    event = {"player": player, "score": score}
    if board is not None:
        event["board"] = board  # absent: the board "global"
    if ts_ms is not None:
        event["ts"] = ts_ms  # when the game ended; seasons and erasures go by it
    if event_id is not None:
        event["id"] = event_id  # the producer's own id, at most 128 bytes
    if meta is not None:
        encode_meta(meta)  # shown beside the score this event sets; checked before sending
        event["meta"] = meta
    # ensure_ascii=False: UTF-8 as sent, as JSON.stringify does, so a meta's size is its own.
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


def sign(secret, key, value):
    """lb-signature: lowercase hex of HMAC-SHA256(secret, key bytes + 0x00 + value bytes)."""
    return hmac.new(secret, key + b"\x00" + value, hashlib.sha256).hexdigest()


class ScoreProducer:
    """One idempotent Kafka producer that signs every record it sends."""

    def __init__(self, brokers, topic, key_id, secret):
        self.topic, self.key_id, self.secret = topic, key_id, secret
        self.failed = 0
        self._producer = Producer({
            "bootstrap.servers": brokers,
            "enable.idempotence": True,  # no duplicate or reordered record on retry
            "acks": "all",  # acknowledged once every in-sync replica has it
            "linger.ms": 5,
            "delivery.timeout.ms": 30000,  # give up (and report) after 30 s
            "error_cb": self._on_error,
        })

    def publish(self, player, score, board=None, meta=None, ts_ms=None):
        """Queues one event (ended at `ts_ms`, default now); its delivery report comes through poll() or flush()."""
        ts_ms = time.time_ns() // 1_000_000 if ts_ms is None else ts_ms
        value = encode_event(player, score, board, ts_ms=ts_ms, event_id=str(uuid.uuid4()), meta=meta)
        key = player.encode()  # the record key is the player id
        headers = [("lb-key-id", self.key_id), ("lb-signature", sign(self.secret, key, value))]
        while True:
            try:
                self._producer.produce(self.topic, key=key, value=value, headers=headers,
                                       on_delivery=self._on_delivery)
                break
            except BufferError:  # the local queue is full: serve reports, then retry
                self._producer.poll(0.1)
        self._producer.poll(0)

    def poll(self, timeout=0.0):
        """Serves delivery reports; call it from the game server's loop."""
        return self._producer.poll(timeout)

    def close(self, timeout=30.0):
        """Waits for every delivery report; returns how many events were not acknowledged."""
        unsent = self._producer.flush(timeout)
        if unsent:
            print(f"error: {unsent} event(s) still unacknowledged after {timeout} s", file=sys.stderr)
        return self.failed + unsent

    def _on_delivery(self, err, msg):
        if err is not None:
            self.failed += 1
            print(f"error: event for player {msg.key().decode()} not delivered: {err}", file=sys.stderr)
        else:
            print(f"delivered player={msg.key().decode()} partition={msg.partition()} offset={msg.offset()}")

    def _on_error(self, err):
        # Client-wide errors (e.g. all brokers down); librdkafka keeps retrying unless fatal.
        print(f"kafka: {err}", file=sys.stderr)
        if err.fatal():
            raise KafkaException(err)


def parse_pair(text):
    player, sep, score = text.partition("=")
    if not sep or not PLAYER_ID.fullmatch(player) or not score.isdigit() or int(score) > MAX_SCORE:
        raise argparse.ArgumentTypeError(f"expected PLAYER=SCORE (a player id, 0 to 2^53-1), got {text!r}")
    return player, int(score)


def parse_board(text):
    if not BOARD_ID.fullmatch(text):
        raise argparse.ArgumentTypeError(f"a board is 1 to 64 of [A-Za-z0-9_.-], got {text!r}")
    return text


def parse_meta(text):
    try:
        meta = json.loads(text)
        encode_meta(meta)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--meta: {e}")
    return meta


def main():
    parser = argparse.ArgumentParser(description="Publish signed score events.")
    parser.add_argument("--board", type=parse_board, help='the board (default: "global")')
    parser.add_argument("--meta", type=parse_meta, help="a JSON object shown beside each score, at most 512 bytes")
    parser.add_argument("--ts", type=int, help="when the games ended, ms since the epoch (default: now)")
    parser.add_argument("events", nargs="+", type=parse_pair, metavar="PLAYER=SCORE")
    args = parser.parse_args()
    try:
        producer = ScoreProducer(
            brokers=os.environ["LB_KAFKA_BROKERS"],
            topic=os.environ.get("LB_TOPIC", "scores"),
            key_id=os.environ["LB_PRODUCER_KEY_ID"],
            secret=bytes.fromhex(os.environ["LB_PRODUCER_KEY"]),
        )
    except KeyError as missing:
        sys.exit(f"error: set {missing.args[0]} (see the top of {__file__})")
    except ValueError:
        sys.exit("error: LB_PRODUCER_KEY must be hex")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops like Ctrl-C
    interrupted = False
    try:
        for player, score in args.events:
            producer.publish(player, score, args.board, args.meta, args.ts)
    except KeyboardInterrupt:
        print("interrupted: sending what was queued", file=sys.stderr)
        interrupted = True
    failed = producer.close()  # flush on exit: every queued event gets its delivery report
    sys.exit(1 if failed or interrupted else 0)


if __name__ == "__main__":
    main()
