// kafkajs against ferrolog: produce, a two-member consumer group that splits four partitions,
// commits, a rebalance when one member leaves, and the admin API's view of the group.
// Usage: node groups.js <bootstrap>. Exits non-zero on the first failure.
const { Kafka, logLevel } = require('kafkajs');

const bootstrap = process.argv[2];
const kafka = new Kafka({ clientId: 'kafkajs-interop', brokers: [bootstrap], logLevel: logLevel.NOTHING });
const topic = `kafkajs-${Date.now()}`;
const groupId = `kafkajs-group-${Date.now()}`;
let passed = 0;

function check(ok, what) {
  if (!ok) throw new Error(`FAILED: ${what}`);
  passed++;
}

async function waitFor(cond, ms) {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  return cond();
}

async function main() {
  const admin = kafka.admin();
  await admin.connect();
  check(await admin.createTopics({ topics: [{ topic, numPartitions: 4 }] }), 'topic created');

  const producer = kafka.producer();
  await producer.connect();
  const messages = Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, value: `${i}` }));
  await producer.send({ topic, messages });
  await producer.disconnect();

  const seen = new Set();
  const owned = [new Set(), new Set()];
  const consumers = [0, 1].map(() => kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 500 }));
  for (const [i, c] of consumers.entries()) {
    await c.connect();
    await c.subscribe({ topic, fromBeginning: true });
    c.on(c.events.GROUP_JOIN, (e) => {
      owned[i] = new Set(e.payload.memberAssignment[topic] || []);
    });
    await c.run({ eachMessage: async ({ message }) => { seen.add(message.value.toString()); } });
  }
  check(await waitFor(() => seen.size === 100 && owned[0].size === 2 && owned[1].size === 2, 30000),
    `two members split four partitions and read all 100 (read ${seen.size}, owned ${owned[0].size}+${owned[1].size})`);

  const described = (await admin.describeGroups([groupId])).groups[0];
  check(described.state === 'Stable' && described.members.length === 2, `describeGroups: ${described.state}, ${described.members.length} members`);

  // one member leaves: the other takes all four partitions
  await consumers[1].disconnect();
  check(await waitFor(() => owned[0].size === 4, 30000), `the remaining member owns all four (owns ${owned[0].size})`);
  await consumers[0].disconnect();

  const offsets = await admin.fetchOffsets({ groupId, topics: [topic] });
  const total = offsets[0].partitions.reduce((sum, p) => sum + Number(p.offset), 0);
  check(total === 100, `committed offsets sum to 100, got ${total}`);
  const groups = (await admin.listGroups()).groups.map((g) => g.groupId);
  check(groups.includes(groupId), 'listGroups shows the group');
  await admin.deleteGroups([groupId]);
  await admin.disconnect();
  console.log(`${passed} passed, 0 failed`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
