"""The producers check's reading of docs/producers.md and its verdict (scripts/producers-check.sh).

  check.py block NAME    prints the shell block marked `<!-- producers-check: NAME -->`
  check.py vector-env    prints `export` lines for the page's test-vector key id and secret
  check.py verify ...    the checks after the blocks ran (needs confluent-kafka: run it with the
                         examples' virtualenv); prints one line saying what was checked

`verify` reads the events the page's blocks publish from their producer command lines, so the
expected ranks follow the page. It needs the environment the blocks ran in: LB_KAFKA_BROKERS,
LB_TOPIC, LB_DLQ_TOPIC, LB_API_ADDR.
"""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "producers.md"
CONTRACT = ROOT / "docs" / "contract.md"
PYTHON_EXAMPLE = ROOT / "examples" / "producers" / "python"
NODE_EXAMPLE = ROOT / "examples" / "producers" / "node" / "producer.js"
VECTOR_MARK = "<!-- signing test vector"
DEADLINE_S = 45


class Failed(Exception):
    """A check that did not hold; the message says which and why."""


def fenced_after(lines, start):
    """The body of the first fenced block after line `start`."""
    i = start + 1
    while not lines[i].startswith("```"):
        i += 1
    body = []
    for line in lines[i + 1:]:
        if line.startswith("```"):
            return body
        body.append(line)
    raise Failed(f"unclosed block after line {start + 1}")


def block(name, page=PAGE):
    lines = page.read_text().splitlines()
    marks = [i for i, line in enumerate(lines) if line.strip() == f"<!-- producers-check: {name} -->"]
    if len(marks) != 1:
        raise Failed(f"{page.name}: {len(marks)} blocks marked `producers-check: {name}`, expected 1")
    return "\n".join(fenced_after(lines, marks[0])) + "\n"


def vectors(page):
    """The test vectors of a page: dicts of `name: value` lines."""
    lines = page.read_text().splitlines()
    found = []
    for i, line in enumerate(lines):
        if line.startswith(VECTOR_MARK):
            fields = dict(l.split(": ", 1) for l in fenced_after(lines, i))
            vector = {
                "key_id": fields["lb-key-id"],
                "secret": bytes.fromhex(fields["secret (hex)"]),
                "key": fields["record key (UTF-8)"].encode(),
                "value": fields["value (UTF-8)"].encode(),
                "signature": fields["lb-signature"],
                "where": f"{page.relative_to(ROOT)} line {i + 1}",
            }
            signed = vector["key"] + b"\x00" + vector["value"]
            if signed.hex() != fields["signed bytes (hex)"]:
                raise Failed(f"{vector['where']}: `signed bytes (hex)` is not key, 0x00, value")
            found.append(vector)
    return found


def published_events(text):
    """(board, player, score, meta or None) of every producer command line of a block, in order."""
    events = []
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if not any(w.endswith(("producer.py", "producer.js")) for w in words):
            continue
        board = words[words.index("--board") + 1] if "--board" in words else "global"
        meta = json.loads(words[words.index("--meta") + 1]) if "--meta" in words else None
        for word in words:
            m = re.fullmatch(r"([A-Za-z0-9_.:@-]+)=(\d+)", word)
            if m:
                events.append((board, m.group(1), int(m.group(2)), meta))
    return events


def node_results(vector_list):
    """What the Node example's encodeEvent and sign give for the vectors."""
    script = """
const { encodeEvent, sign } = require(process.argv[1]);
const out = JSON.parse(process.argv[2]).map((v) => {
  const fields = JSON.parse(Buffer.from(v.value, 'hex').toString());
  return {
    encoded: encodeEvent(fields).toString('hex'),
    signature: sign(Buffer.from(v.secret, 'hex'), Buffer.from(v.key, 'hex'), Buffer.from(v.value, 'hex')),
  };
});
console.log(JSON.stringify(out));
"""
    arg = json.dumps([{k: v[k].hex() for k in ("secret", "key", "value")} for v in vector_list])
    done = subprocess.run(["node", "-e", script, str(NODE_EXAMPLE), arg], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise Failed(f"node could not compute the vectors: {done.stderr.strip()}")
    return json.loads(done.stdout)


def check_vectors(vector_list):
    """Python and Node sign every vector as documented; the page's own is also encoded byte for byte."""
    sys.path.insert(0, str(PYTHON_EXAMPLE))
    import producer  # the Python example

    for v, js in zip(vector_list, node_results(vector_list)):
        fields = json.loads(v["value"])
        for lang, signature in (("python", producer.sign(v["secret"], v["key"], v["value"])), ("node", js["signature"])):
            if signature != v["signature"]:
                raise Failed(f"{v['where']}: {lang} signs {signature}, the page says {v['signature']}")
        if v is vector_list[0]:
            py = producer.encode_event(fields["player"], fields["score"], fields.get("board"), fields.get("ts"), fields.get("id"))
            for lang, encoded in (("python", py.hex()), ("node", js["encoded"])):
                if encoded != v["value"].hex():
                    raise Failed(f"{v['where']}: {lang} encodes {bytes.fromhex(encoded)!r}, the page says {v['value']!r}")


def publish_exactly(vector):
    """Publishes the vector's record as documented: its bytes and its documented signature."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": os.environ["LB_KAFKA_BROKERS"], "enable.idempotence": True})
    errors = []
    producer.produce(
        os.environ["LB_TOPIC"], key=vector["key"], value=vector["value"],
        headers=[("lb-key-id", vector["key_id"]), ("lb-signature", vector["signature"])],
        on_delivery=lambda err, _msg: errors.append(err) if err else None,
    )
    if producer.flush(30) or errors:
        raise Failed(f"the test vector's record was not delivered: {errors or 'timed out'}")


def api_get(board, player):
    url = f"http://{os.environ['LB_API_ADDR']}/v1/boards/{board}/players/{player}"
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as e:
        return e.code, None
    except (urllib.error.URLError, OSError) as e:
        return f"no answer ({e})", None


def expected_standings(events):
    """{(board, player): (best score, rank, players on the board, meta)}: best score, 1 + strictly
    greater, and the meta of the event that set the best (docs/contract.md#entry-metadata)."""
    best = {}
    for board, player, score, meta in events:
        if (board, player) not in best or score > best[(board, player)][0]:
            best[(board, player)] = (score, meta)
    out = {}
    for (board, player), (score, meta) in best.items():
        others = [s for (b, _), (s, _) in best.items() if b == board]
        out[(board, player)] = (score, 1 + sum(s > score for s in others), len(others), meta)
    return out


def wait_for_ranks(expected):
    deadline = time.monotonic() + DEADLINE_S
    while True:
        wrong = []
        for (board, player), want in sorted(expected.items()):
            status, body = api_get(board, player)
            got = (body["score"], body["rank"], body["total"], body.get("meta")) if status == 200 else status
            if got != want:
                wrong.append(f"{board}/{player}: got {got}, expected (score, rank, total, meta) {want}")
        if not wrong:
            return
        if time.monotonic() > deadline:
            raise Failed(f"after {DEADLINE_S} s the api answers: {'; '.join(wrong)}")
        time.sleep(0.25)


def dead_letters(count):
    """Every record of the run's dead-letter topic, once at least `count` arrived (or the deadline)."""
    from confluent_kafka import Consumer, TopicPartition

    topic = os.environ["LB_DLQ_TOPIC"]
    consumer = Consumer({
        "bootstrap.servers": os.environ["LB_KAFKA_BROKERS"], "group.id": f"producers-check-{uuid.uuid4()}",
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    letters, deadline = [], time.monotonic() + DEADLINE_S
    try:
        while len(letters) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                letters.append(msg)
        # Then what the topic holds in all: nothing more than what was read.
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        held = sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions)
    finally:
        consumer.close()
    return letters, held


def verify(forged):
    own, *others = vectors(PAGE)
    contract = vectors(CONTRACT) if CONTRACT.exists() else []
    check_vectors([own, *others, *contract])

    publish_exactly(own)
    events = published_events(block("python")) + published_events(block("node"))
    value = json.loads(own["value"])
    expected = expected_standings(events)
    expected[(value.get("board", "global"), value["player"])] = (value["score"], 1, 1, value.get("meta"))
    wait_for_ranks(expected)

    forged_keys = sorted(f.split("/", 1)[1] for f in forged)
    letters, held = dead_letters(len(forged))
    got = sorted(m.key().decode() for m in letters)
    codes = sorted({(dict(m.headers() or []).get("error.code") or b"none").decode() for m in letters})
    if got != forged_keys or codes != ["bad_signature"] or held != len(forged):
        raise Failed(f"dead letters: keys {got}, codes {codes}, {held} held; expected {forged_keys}, bad_signature")
    for f in forged:
        status, body = api_get(*f.split("/", 1))
        if status != 404:
            raise Failed(f"the forged event of {f} was applied: {status} {body}")

    players = len({(b, p) for b, p, _, _ in events})
    more = ", ".join(f"{v['where'].split(' ')[0]}'s" for v in (*others, *contract))
    print(f"python and node examples: {len(events)} signed events applied, the {players} players' ranks as the "
          f"page says; {len(forged)} signed with a wrong key dead-lettered as bad_signature, not applied; "
          f"test vectors: {own['where'].split(' ')[0]}'s signed alike by Python, Node and ingest's verifier"
          + (f", {more} by Python and Node" if more else ""))


def rewards(db_path, log_path):
    """The reward consumer's block: its four lines in order, and the grants of revision 2."""
    import sqlite3

    lines = [line for line in Path(log_path).read_text().splitlines() if " revision " in line]
    ids = {line.split(" ")[0] for line in lines}
    if len(ids) != 1:
        raise Failed(f"rewards: expected one season's result, got {sorted(ids)}")
    (result_id,) = ids
    want = [f"{result_id} revision 1: applied", f"{result_id} revision 2: applied",
            f"{result_id} revision 1: skipped (a repeat)", f"{result_id} revision 2: skipped (a repeat)"]
    if lines != want:
        raise Failed(f"rewards: printed {lines}, expected {want}")
    db = sqlite3.connect(db_path)
    grants = db.execute("SELECT player, rank, reward FROM grants WHERE result_id = ? ORDER BY rank",
                        (result_id,)).fetchall()
    applied = db.execute("SELECT revision FROM applied WHERE result_id = ?", (result_id,)).fetchone()
    if grants != [("p-ben", 1, "gold"), ("p-cat", 2, "silver"), ("p-dan", 3, "bronze")] or applied != (2,):
        raise Failed(f"rewards: {result_id} granted {grants} at revision {applied}")
    print(f"reward consumer: {result_id} granted once per revision, the ban's amendment took p-ann's gold back, "
          "a replay granted nothing")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("block").add_argument("name")
    sub.add_parser("vector-env")
    sub.add_parser("verify").add_argument("--forged", nargs="+", required=True, metavar="BOARD/PLAYER")
    rewarded = sub.add_parser("rewards")
    rewarded.add_argument("db")
    rewarded.add_argument("log")
    args = parser.parse_args()
    try:
        if args.command == "block":
            print(block(args.name), end="")
        elif args.command == "vector-env":
            v = vectors(PAGE)[0]
            print(f"export LB_PRODUCER_KEY_ID={shlex.quote(v['key_id'])} LB_PRODUCER_KEY={v['secret'].hex()}")
        elif args.command == "rewards":
            rewards(args.db, args.log)
        else:
            verify(args.forged)
    except Failed as e:
        sys.exit(f"FAILED: {e}")


if __name__ == "__main__":
    main()
