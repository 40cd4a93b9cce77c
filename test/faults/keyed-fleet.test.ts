// Fleet learning with one model per key, in real `node-red` processes on the real broker: members read one
// six-partition topic of machine readings in one consumer group, each with consumer → keyed scorer → keyed learner
// (sharing on a model topic). The Kafka key is the record id, so every machine's records are spread over every
// partition and all members learn every machine. Per machine, every member ends up serving the model of that
// machine's records alone; the members' own records of it add up to its records, also when a member is SIGKILLed
// mid-stream or the broker is killed and restarted; a member that joins after the stream serves every machine's full
// model. The live cap (3 models for
// 4 machines) makes keys leave memory and come back throughout.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { createModel, type StatisticsReport } from '../../src/engine';
import { parseAttributeTable } from '../../src/node-red/model-config';
import { createTopic, uniqueName } from '../kafka/support';
import { kafkaBrokers } from '../support/env';
import { brokerNotRestartable, killAndRestartBroker, NodeRedProcesses, pacedStream } from '../support/fault-run';
import { modelSummaries, type NodeRedProcess } from '../support/node-red-process';
import { assertSameStatistics } from '../support/same-statistics';

after(() => {
  setTimeout(() => process.exit(), 2_000);
});

const MACHINES = ['pump-1', 'pump-2', 'fan-1', 'press-1'];
const RECORDS = 6_000;
const RUN = 20; // a machine reports in runs of this many readings
const PER_TICK = 200; // every 100 ms
const PARTITIONS = 6;
const INTERVAL_S = 0.5;
const MAX_LIVE = 3;
const TABLE = [
  { name: 'vibration', type: 'C' },
  { name: 'temperature', type: 'C' },
  { name: 'current', type: 'C' },
  { name: 'machine', type: 'X' },
  { name: 'id', type: 'X' },
];

interface Reading {
  id: number;
  machine: string;
  vibration: number;
  temperature: number;
  current: number;
}

/** Deterministic readings; each machine has its own normal. */
function readings(): Reading[] {
  let s = 11;
  const next = (): number => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const out: Reading[] = [];
  while (out.length < RECORDS) {
    const m = Math.floor(next() * MACHINES.length);
    for (let i = 0; i < RUN && out.length < RECORDS; i++) {
      const v = 1 + m + (next() - 0.5) * (0.2 + 0.1 * m);
      out.push({
        id: out.length,
        machine: MACHINES[m],
        vibration: v,
        temperature: 40 + 5 * m + 3 * v + (next() - 0.5),
        current: 10 - m + v * v * 0.1 + (next() - 0.5) * 0.3,
      });
    }
  }
  return out;
}

const records = readings();

/** Per machine: the statistics of one model that learned that machine's records alone, and how many there are. */
function references(): Map<string, { statistics: StatisticsReport; records: number }> {
  const out = new Map<string, { statistics: StatisticsReport; records: number }>();
  for (const machine of MACHINES) {
    const model = createModel({ attributes: parseAttributeTable(TABLE) });
    let n = 0;
    for (const r of records)
      if (r.machine === machine) {
        model.learnOne(JSON.parse(JSON.stringify(r)) as Record<string, unknown> as never);
        n++;
      }
    out.set(machine, { statistics: model.statistics(), records: n });
  }
  return out;
}

function flows(member: string, input: string, modelTopic: string, groupId: string): unknown[] {
  const keyed = { keyed: true, keySource: 'record', keyProperty: 'machine' };
  return [
    { id: 'tab1', type: 'tab', label: 'machines' },
    {
      id: 'broker',
      type: 'stream-ml-kafka-broker',
      brokers: kafkaBrokers().join(','),
      clientId: `keyed-fleet-${member}`,
      reconnectMaxDelay: 2_000,
      requestTimeout: 5_000,
      connectionTimeout: 2_000,
    },
    {
      id: 'consumer',
      type: 'stream-ml-kafka-consumer',
      z: 'tab1',
      broker: 'broker',
      topics: input,
      groupId,
      fromBeginning: 'earliest',
      valueEncoding: 'json',
      sessionTimeout: 10_000,
      maxInFlight: 50,
      wires: [['scorer']],
    },
    { id: 'scorer', type: 'stream-ml-anomaly-scorer', z: 'tab1', model: 'machines', ...keyed, wires: [['learner']] },
    {
      id: 'learner',
      type: 'stream-ml-online-learner',
      z: 'tab1',
      model: 'machines',
      attributes: TABLE,
      ...keyed,
      maxLive: String(MAX_LIVE),
      share: true,
      shareBroker: 'broker',
      shareTopic: modelTopic,
      shareInterval: INTERVAL_S,
      shareMember: member,
      wires: [[], []],
    },
  ];
}

interface KeyDetail {
  key: string;
  recordsLearned: number;
  statistics: StatisticsReport;
  fleet?: { members: { member: string; records: number; own: boolean }[] };
}

interface KeyedFleetView {
  members: string[];
  keys: number;
  liveKeys: number;
  heldContributions: number;
  heldBytes: number;
  refused: number;
  learnedTwiceForgotten: number;
  published: number;
  publishedBytes: number;
  lastContributionBytes: number;
}

async function modelId(url: string): Promise<string | undefined> {
  const models = await modelSummaries<{ id: string; name: string }>(url);
  return models.find((m) => m.name === 'machines')?.id;
}

async function keyDetail(url: string, key: string): Promise<KeyDetail | undefined> {
  const id = await modelId(url);
  if (!id) return undefined;
  const res = await fetch(
    `${url}/stream-ml/models/keys?model=${encodeURIComponent(id)}&key=${encodeURIComponent(key)}`,
  );
  return res.status === 200 ? ((await res.json()) as KeyDetail) : undefined;
}

async function fleetView(url: string): Promise<KeyedFleetView | undefined> {
  const models = await modelSummaries<{ name: string; fleet?: KeyedFleetView }>(url);
  return models.find((m) => m.name === 'machines')?.fleet;
}

interface Fleet {
  start(member: string): Promise<NodeRedProcess>;
  /** Starts a member again on its user folder (after a stop or a kill). */
  restart(member: string): Promise<NodeRedProcess>;
  stream(): void;
  /** Holds the stream (resolving once no send is under way) or lets it go on. */
  hold(held: boolean): Promise<void>;
  processes: Map<string, NodeRedProcess>;
  producing: Promise<void>;
  close(): Promise<void>;
  warnings(): string;
}

async function startFleet(): Promise<Fleet> {
  const input = await createTopic('keyed-fleet-in', PARTITIONS);
  const modelTopic = uniqueName('keyed-fleet-models');
  const groupId = uniqueName('keyed-fleet-group');
  const members = new NodeRedProcesses('stream-ml-keyed-fleet');
  const stream = await pacedStream(input, records, PER_TICK, { waitForRelease: true });
  return {
    processes: members.processes,
    producing: stream.done,
    start: (member) => members.start(member, flows(member, input, modelTopic, groupId)),
    restart: (member) => members.restart(member),
    stream: () => stream.release(),
    hold: (held) => stream.hold(held),
    warnings: () => members.warnings(),
    async close() {
      await stream.close();
      await members.close();
    },
  };
}

/** Waits until the member serves every machine's full model, then one interval more (nothing counted twice). */
async function converged(
  fleet: Fleet,
  member: string,
  expected: Map<string, { records: number }>,
): Promise<Map<string, KeyDetail>> {
  const url = fleet.processes.get(member)!.url;
  const all = async (): Promise<Map<string, KeyDetail>> => {
    const out = new Map<string, KeyDetail>();
    for (const machine of MACHINES) {
      const detail = await keyDetail(url, machine);
      if (detail) out.set(machine, detail);
    }
    return out;
  };
  let details = new Map<string, KeyDetail>();
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    details = await all();
    if (MACHINES.every((m) => (details.get(m)?.recordsLearned ?? -1) >= expected.get(m)!.records)) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const counts = MACHINES.map((m) => `${m} ${details.get(m)?.recordsLearned} of ${expected.get(m)!.records}`);
  assert.ok(
    MACHINES.every((m) => (details.get(m)?.recordsLearned ?? -1) >= expected.get(m)!.records),
    `${member} serves every machine's records: ${counts.join(', ')}; Node-RED warned:\n${fleet.warnings()}`,
  );
  await new Promise((r) => setTimeout(r, (INTERVAL_S + 1) * 1000));
  return all();
}

/** Per machine, on one member: its statistics are one model's of that machine; returns the own records per member. */
function checkMember(
  member: string,
  details: Map<string, KeyDetail>,
  expected: Map<string, { statistics: StatisticsReport; records: number }>,
  ownByMachine: Map<string, Map<string, number>>,
): void {
  for (const machine of MACHINES) {
    const detail = details.get(machine)!;
    const reference = expected.get(machine)!;
    assert.equal(detail.recordsLearned, reference.records, `${member} ${machine}: records served`);
    assertSameStatistics(detail.statistics, reference.statistics, `${member} ${machine}`);
    assert.ok(detail.fleet, `${member} ${machine}: the key's fleet members`);
    const own = detail.fleet.members.find((x) => x.own)!;
    assert.equal(own.member, member);
    let byMember = ownByMachine.get(machine);
    if (!byMember) ownByMachine.set(machine, (byMember = new Map()));
    // Every member's view of the key gives each member's records the same way.
    for (const m of detail.fleet.members) {
      const seen = byMember.get(m.member);
      if (seen === undefined) byMember.set(m.member, m.records);
      else assert.equal(m.records, seen, `${member}'s view of ${m.member}'s records of ${machine}`);
    }
  }
}

test('members share per key: each machine exact on every member; a member joining later serves all', async () => {
  const fleet = await startFleet();
  try {
    const members = ['gw-1', 'gw-2', 'gw-3'];
    await Promise.all(members.map((m) => fleet.start(m)));
    fleet.stream();
    await fleet.producing;
    const expected = references();
    const ownByMachine = new Map<string, Map<string, number>>();
    const views = await Promise.all(members.map((m) => converged(fleet, m, expected)));
    members.forEach((m, i) => checkMember(m, views[i], expected, ownByMachine));
    for (const machine of MACHINES) {
      const byMember = ownByMachine.get(machine)!;
      const sum = [...byMember.values()].reduce((a, b) => a + b, 0);
      console.log(
        `${machine}: ${expected.get(machine)!.records} records, own per member ` +
          [...byMember].map(([m, n]) => `${m} ${n}`).join(', '),
      );
      assert.equal(sum, expected.get(machine)!.records, `${machine}: the members' own records add up`);
      assert.ok([...byMember.values()].filter((n) => n > 0).length >= 2, `${machine} is learned by several members`);
    }
    for (const m of members) {
      const view = (await fleetView(fleet.processes.get(m)!.url))!;
      console.log(
        `${m}: ${view.keys} keys (${view.liveKeys} live), ${view.heldContributions} contributions held in ` +
          `${(view.heldBytes / 1024).toFixed(1)} KiB (${(view.heldBytes / Math.max(1, view.heldContributions) / 1024).toFixed(1)} KiB ` +
          `each, deflated), ${view.published} contributions published, last ${(view.lastContributionBytes / 1024).toFixed(1)} KiB`,
      );
      assert.equal(view.refused, 0);
      assert.ok(view.liveKeys <= MAX_LIVE, `${m}: the live cap holds`);
      assert.deepEqual([...view.members].sort(), members);
    }

    // A member joining after the stream: no records come to it, yet it serves every machine's model.
    const joinedAt = Date.now();
    await fleet.start('gw-4');
    const late = await converged(fleet, 'gw-4', expected);
    console.log(`gw-4 joined: ${((Date.now() - joinedAt) / 1000).toFixed(1)} s to serving every machine`);
    for (const machine of MACHINES) {
      const detail = late.get(machine)!;
      assertSameStatistics(detail.statistics, expected.get(machine)!.statistics, `gw-4 ${machine}`);
      assert.equal(detail.fleet!.members.find((x) => x.own)!.records, 0);
    }
  } finally {
    await fleet.close();
  }
});

test('a member killed (SIGKILL) mid-stream: the others take over, every machine counted once; it restarts from the topic', async () => {
  const fleet = await startFleet();
  try {
    const members = ['gw-1', 'gw-2', 'gw-3'];
    await Promise.all(members.map((m) => fleet.start(m)));
    fleet.stream();
    const killAt = Math.floor(RECORDS * (0.25 + 0.4 * Math.random()));
    // Once gw-3 has learned (and published) a share of the records, about killAt records into the stream.
    const url3 = fleet.processes.get('gw-3')!.url;
    const startedAt = Date.now();
    let ownOf3 = 0;
    for (;;) {
      const details = await Promise.all(MACHINES.map((m) => keyDetail(url3, m).catch(() => undefined)));
      ownOf3 = details.reduce((n, d) => n + (d?.fleet?.members.find((x) => x.own)?.records ?? 0), 0);
      const elapsed = (Date.now() - startedAt) / 1000;
      if (ownOf3 >= 300 && elapsed * (PER_TICK * 10) >= killAt) break;
      assert.ok(elapsed < 60, `gw-3 learns records (${ownOf3} so far)`);
      await new Promise((r) => setTimeout(r, 100));
    }
    console.log(`gw-3 killed with ${ownOf3} records of its own`);
    await fleet.processes.get('gw-3')!.kill();
    await fleet.producing;
    const expected = references();
    const survivors = ['gw-1', 'gw-2'];
    const all = await Promise.all(survivors.map((m) => converged(fleet, m, expected)));
    for (const [i, m] of survivors.entries()) {
      const details = all[i];
      for (const machine of MACHINES) {
        const detail = details.get(machine)!;
        const sum = detail.fleet!.members.reduce((total, x) => total + x.records, 0);
        console.log(
          `${m} ${machine} after gw-3's SIGKILL at about ${killAt}: ` +
            detail.fleet!.members.map((x) => `${x.member} ${x.records}`).join(', '),
        );
        assert.equal(sum, expected.get(machine)!.records, `${m} ${machine}: the members' records add up`);
        assert.equal(detail.recordsLearned, expected.get(machine)!.records, `${m} ${machine}: every record once`);
        assertSameStatistics(detail.statistics, expected.get(machine)!.statistics, `${m} ${machine}`);
      }
    }
    // gw-3 again on its user folder: its own per key comes from the topic (what the others hold of it).
    const ofGw3 = new Map(
      MACHINES.map((machine) => [
        machine,
        all[0].get(machine)!.fleet!.members.find((x) => x.member === 'gw-3')?.records ?? 0,
      ]),
    );
    await fleet.restart('gw-3');
    const back = await converged(fleet, 'gw-3', expected);
    for (const machine of MACHINES) {
      const detail = back.get(machine)!;
      const own = detail.fleet!.members.find((x) => x.own)!;
      assert.equal(own.member, 'gw-3');
      assert.equal(own.records, ofGw3.get(machine), `gw-3 restarted: its own records of ${machine}`);
      assert.equal(detail.recordsLearned, expected.get(machine)!.records, `gw-3 restarted: ${machine} served`);
      assertSameStatistics(detail.statistics, expected.get(machine)!.statistics, `gw-3 restarted ${machine}`);
    }
  } finally {
    await fleet.close();
  }
});

test('the broker killed (SIGKILL) mid-stream and restarted: every machine counted once', async (t) => {
  const notRestartable = brokerNotRestartable();
  if (notRestartable) return t.skip(notRestartable);
  const fleet = await startFleet();
  try {
    const members = ['gw-1', 'gw-2', 'gw-3'];
    await Promise.all(members.map((m) => fleet.start(m)));
    fleet.stream();
    // Once the members have learned killAt records between them.
    const killAt = Math.floor(RECORDS * (0.25 + 0.4 * Math.random()));
    const ownOf = async (m: string): Promise<number> => {
      const url = fleet.processes.get(m)!.url;
      const details = await Promise.all(MACHINES.map((machine) => keyDetail(url, machine).catch(() => undefined)));
      return details.reduce((n, d) => n + (d?.fleet?.members.find((x) => x.own)?.records ?? 0), 0);
    };
    let learned = 0;
    for (const startedAt = Date.now(); learned < killAt;) {
      learned = (await Promise.all(members.map(ownOf))).reduce((a, b) => a + b, 0);
      assert.ok(Date.now() - startedAt < 60_000, `the members learn records (${learned} so far)`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await killAndRestartBroker(fleet, 3_000);
    await fleet.producing;
    const expected = references();
    const ownByMachine = new Map<string, Map<string, number>>();
    const views = await Promise.all(members.map((m) => converged(fleet, m, expected)));
    members.forEach((m, i) => checkMember(m, views[i], expected, ownByMachine));
    for (const machine of MACHINES) {
      const byMember = ownByMachine.get(machine)!;
      t.diagnostic(
        `${machine} after the broker's SIGKILL at ${learned} records learned, down 3 s: ` +
          `${expected.get(machine)!.records} records, own per member ` +
          [...byMember].map(([m, n]) => `${m} ${n}`).join(', '),
      );
      const sum = [...byMember.values()].reduce((a, b) => a + b, 0);
      assert.equal(sum, expected.get(machine)!.records, `${machine}: the members' own records add up`);
    }
    for (const m of members) {
      const view = (await fleetView(fleet.processes.get(m)!.url))!;
      t.diagnostic(
        `${m}: ${view.published} contributions published, ${view.learnedTwiceForgotten} learned twice and forgotten`,
      );
      assert.equal(view.refused, 0);
      assert.deepEqual([...view.members].sort(), members);
    }
  } finally {
    await fleet.close();
  }
});
