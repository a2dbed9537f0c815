// Publishes signed score events to the leaderboard's Kafka topic.
//
// The event and the signature follow docs/contract.md ("Score event", "Signed
// events"); docs/producers.md walks through this file. A game server keeps one
// ScoreProducer for its lifetime and calls publish() when a game ends.
//
// Configuration, from the environment:
//   LB_KAFKA_BROKERS     bootstrap servers, e.g. 127.0.0.1:9092
//   LB_TOPIC             the scores topic (default: scores)
//   LB_PRODUCER_KEY_ID   this game server's key id (the lb-key-id header)
//   LB_PRODUCER_KEY      its secret, hex (ingest holds it as --producer-keys id:hex)
//
// Usage: node producer.js [--board BOARD] [--meta JSON] PLAYER=SCORE [PLAYER=SCORE ...]
//   --meta: a JSON object of at most 512 bytes shown beside each score (a name, a country)
// Exits 0 once the broker has acknowledged every event, 1 otherwise.
'use strict';

const crypto = require('node:crypto');
const os = require('node:os');
const { Kafka, Partitioners, logLevel } = require('kafkajs');

const PLAYER_ID = /^[A-Za-z0-9_.:@-]{1,64}$/;
const BOARD_ID = /^[A-Za-z0-9_.-]{1,64}$/;
const MAX_META_BYTES = 512;

/** Throws unless `meta` is a JSON object of at most 512 bytes of compact JSON (UTF-8). */
function checkMeta(meta) {
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) throw new Error('meta must be a JSON object');
  const bytes = Buffer.byteLength(JSON.stringify(meta));
  if (bytes > MAX_META_BYTES) throw new Error(`meta must be at most ${MAX_META_BYTES} bytes of JSON, got ${bytes}`);
}

/** The record value: compact JSON of the event, as a Buffer (these exact bytes are signed). */
function encodeEvent({ player, score, board, ts, id, meta }) {
  if (!PLAYER_ID.test(player)) throw new Error(`player must be 1 to 64 of [A-Za-z0-9_.:@-], got ${JSON.stringify(player)}`);
  if (board !== undefined && !BOARD_ID.test(board)) throw new Error(`board must be 1 to 64 of [A-Za-z0-9_.-], got ${JSON.stringify(board)}`);
  if (!Number.isSafeInteger(score) || score < 0) throw new Error(`score must be an integer from 0 to 2^53-1, got ${score}`);
  if (meta !== undefined) checkMeta(meta); // shown beside the score this event sets
  // undefined fields are left out: no board means "global"; ts is when the game ended (seasons
  // and erasures go by it); id is the producer's own, at most 128 bytes.
  return Buffer.from(JSON.stringify({ player, score, board, ts, id, meta }));
}

/** lb-signature: lowercase hex of HMAC-SHA256(secret, key bytes + 0x00 + value bytes). */
function sign(secret, key, value) {
  return crypto.createHmac('sha256', secret).update(key).update(Buffer.of(0)).update(value).digest('hex');
}

/** One idempotent Kafka producer that signs every record it sends. */
class ScoreProducer {
  constructor({ brokers, topic, keyId, secret }) {
    Object.assign(this, { topic, keyId, secret });
    const kafka = new Kafka({ clientId: 'leaderboard-producer', brokers: brokers.split(','), logLevel: logLevel.WARN });
    this.producer = kafka.producer({
      idempotent: true, // no duplicate or reordered record on retry...
      maxInFlightRequests: 1, // ...with one request in flight, as KIP-98 asks
      createPartitioner: Partitioners.DefaultPartitioner, // murmur2 of the key, as Java's client
    });
  }

  connect() {
    return this.producer.connect();
  }

  /** Sends events; resolves once the broker acknowledged all of them (acks=all), rejects otherwise. */
  async publish(events) {
    const messages = events.map(({ player, score, board, meta }) => {
      const value = encodeEvent({ player, score, board, ts: Date.now(), id: crypto.randomUUID(), meta });
      const key = Buffer.from(player); // the record key is the player id
      return { key, value, headers: { 'lb-key-id': this.keyId, 'lb-signature': sign(this.secret, key, value) } };
    });
    // acks: -1 is "all": acknowledged once every in-sync replica has them.
    return this.producer.send({ topic: this.topic, acks: -1, timeout: 30000, messages });
  }

  disconnect() {
    return this.producer.disconnect();
  }
}

function parseArgs(argv) {
  let board;
  let meta;
  const events = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--board') {
      board = argv[++i];
      continue;
    }
    if (argv[i] === '--meta') {
      meta = JSON.parse(argv[++i] ?? 'null');
      checkMeta(meta);
      continue;
    }
    const match = /^([^=]+)=(\d+)$/.exec(argv[i]);
    if (!match) throw new Error(`expected PLAYER=SCORE, got ${JSON.stringify(argv[i])}`);
    const event = { player: match[1], score: Number(match[2]), board, meta };
    encodeEvent(event); // throws now on a bad player, score or board, before connecting
    events.push(event);
  }
  if (events.length === 0) throw new Error('usage: node producer.js [--board BOARD] [--meta JSON] PLAYER=SCORE [PLAYER=SCORE ...]');
  return events;
}

async function main() {
  const events = parseArgs(process.argv.slice(2));
  for (const name of ['LB_KAFKA_BROKERS', 'LB_PRODUCER_KEY_ID', 'LB_PRODUCER_KEY']) {
    if (!process.env[name]) throw new Error(`set ${name} (see the top of ${__filename})`);
  }
  const secret = Buffer.from(process.env.LB_PRODUCER_KEY, 'hex');
  if (secret.toString('hex') !== process.env.LB_PRODUCER_KEY.toLowerCase()) throw new Error('LB_PRODUCER_KEY must be hex');
  const producer = new ScoreProducer({
    brokers: process.env.LB_KAFKA_BROKERS,
    topic: process.env.LB_TOPIC || 'scores',
    keyId: process.env.LB_PRODUCER_KEY_ID,
    secret,
  });
  // SIGINT and SIGTERM: disconnect (which waits for requests in flight), then exit.
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => producer.disconnect().finally(() => process.exit(128 + os.constants.signals[signal])));
  }
  await producer.connect();
  try {
    for (const r of await producer.publish(events)) {
      console.log(`acknowledged topic=${r.topicName} partition=${r.partition} base offset=${r.baseOffset}`);
    }
  } finally {
    await producer.disconnect();
  }
}

if (require.main === module) {
  main().catch((err) => {
    console.error(`error: ${err.message}`);
    process.exitCode = 1;
  });
}

module.exports = { encodeEvent, sign, ScoreProducer };
