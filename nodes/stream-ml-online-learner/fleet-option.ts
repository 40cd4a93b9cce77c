// The learner's "share on a model topic" option, checked at deploy: a broker, a topic, an interval, and a model
// whose every member can merge (an attribute table, detectors that merge).
import type { NodeAPI } from 'node-red';
import { unmergeableDetectors, type ModelOptions } from '../../src/engine';
import type { KafkaConnection } from '../../src/kafka/connection';
import { defaultMemberName } from '../../src/node-red/fleet-sharing';
import type { KafkaBrokerNode } from '../stream-ml-kafka-broker/broker-config';

export interface FleetOptionDef {
  share?: boolean;
  shareBroker?: string;
  shareTopic?: string;
  shareInterval?: string | number;
  shareMember?: string;
  keyed?: boolean;
  template?: string;
}

export interface FleetOption {
  connection: KafkaConnection;
  topic: string;
  member: string;
  intervalMs: number;
}

/** The option as set, undefined when off; throws with what to fix when it cannot work. */
export function fleetOptionFrom(RED: NodeAPI, def: FleetOptionDef, options: ModelOptions): FleetOption | undefined {
  if (!def.share) return undefined;
  if (def.keyed && (def.template === 'merged' || def.template === 'snapshot'))
    throw new Error(
      'a template for new keys does not work with sharing on a model topic (its records would be published as ' +
        "this member's): in a fleet a new key starts from the other members' models for it; pick no template",
    );
  const broker = def.shareBroker ? (RED.nodes.getNode(def.shareBroker) as KafkaBrokerNode | null) : null;
  if (!broker) throw new Error('sharing on a model topic needs a Kafka broker: pick one in the dialog');
  const topic = (def.shareTopic ?? '').trim();
  if (!topic) throw new Error('sharing on a model topic needs the topic name');
  if (!/^[a-zA-Z0-9._-]{1,249}$/.test(topic))
    throw new Error(`"${topic}" is not a Kafka topic name (letters, digits, ".", "_" and "-")`);
  const seconds = def.shareInterval === undefined || def.shareInterval === '' ? 5 : Number(def.shareInterval);
  if (!Number.isFinite(seconds) || seconds < 0.1 || seconds > 3600)
    throw new Error(`the share interval must be 0.1 to 3600 seconds, not "${String(def.shareInterval)}"`);
  if (!options.attributes)
    throw new Error('sharing on a model topic needs the attribute table: every member must learn the same attributes');
  const cannot = unmergeableDetectors([options.detector ?? 'auto', ...(options.extraDetectors ?? [])]);
  if (cannot.length > 0)
    throw new Error(
      `the ${cannot.join(', ')} detector cannot merge models learned apart, so it cannot learn as a fleet: ` +
        `use auto, gaussian, histogram or ecod`,
    );
  const member = (def.shareMember ?? '').trim() || defaultMemberName(RED.settings.userDir);
  return { connection: broker.connection(), topic, member, intervalMs: Math.round(seconds * 1000) };
}
