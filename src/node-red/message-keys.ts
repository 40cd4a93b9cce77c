// Where the keyed learner and scorer find a message's keys, from the dialog's typed input: a message property, a
// field of each record, or a JSONata expression on the message (Node-RED's own, so $flowContext, $env and the rest
// work as in a change node). JSONata evaluates asynchronously: its messages are handed on in the order they came.
import type { Node, NodeAPI, NodeMessage } from 'node-red';
import { KeyReader, parseKeySource } from './keyed-models';
import { messagePropertyReader } from './records';

/** Told what a message holds for its records' keys, or why the key expression failed on it. */
export type KeysReady = (keysValue: unknown, failure?: Error) => void;

export class MessageKeys {
  private order: Promise<void> = Promise.resolve();

  constructor(
    readonly reader: KeyReader,
    private readonly evaluate: ((msg: NodeMessage) => Promise<unknown>) | undefined,
    private readonly onDeliveryError: (error: Error) => void,
  ) {}

  /**
   * Calls `ready` with what the message holds for its records' keys (KeyReader.keyAt reads each record's key from
   * it): at once for a property or a record field; for an expression once it is evaluated, after the messages
   * before it.
   */
  read(msg: NodeMessage, ready: KeysReady): void {
    if (!this.evaluate) return ready(this.reader.ofMessage(msg));
    // Evaluated at once, handed on in arrival order.
    const result = this.evaluate(msg).then(
      (value) => () => ready(value),
      (error: Error) => () => ready(undefined, error),
    );
    this.order = this.order.then(() => result.then((deliver) => deliver())).catch(this.onDeliveryError);
  }

  /** Resolves once every message read so far has been handed on (for close). */
  settled(): Promise<void> {
    return this.order;
  }
}

/**
 * The keys of a node's messages from its dialog: keySource msg, record or jsonata, keyProperty the property, field
 * or expression. Throws a clear error for an unknown source or an expression that does not parse.
 */
export function messageKeysFor(RED: NodeAPI, node: Node, keySource: unknown, keyProperty: unknown): MessageKeys {
  const source = parseKeySource(keySource);
  const onDeliveryError = (error: Error) => node.error(`handling a message failed: ${error.message}`);
  if (source === 'jsonata') {
    const text = String(keyProperty ?? '').trim();
    if (!text) throw new Error('no key expression: write one in the dialog');
    let expression: ReturnType<NodeAPI['util']['prepareJSONataExpression']>;
    try {
      expression = RED.util.prepareJSONataExpression(text, node);
    } catch (error) {
      throw new Error(`the key expression ${text} is not valid JSONata: ${(error as Error).message}`);
    }
    const evaluate = (msg: NodeMessage) =>
      new Promise<unknown>((resolve, reject) =>
        RED.util.evaluateJSONataExpression(expression, msg, (error, value) =>
          error ? reject(error instanceof Error ? error : new Error(describe(error))) : resolve(value),
        ),
      );
    // keyAt reads the value as a message property's: an array is one key per record, anything else every record's.
    const reader = new KeyReader('msg', () => undefined, `the key expression ${text}`);
    return new MessageKeys(reader, evaluate, onDeliveryError);
  }
  const property = String(keyProperty ?? '').trim() || (source === 'msg' ? 'key' : 'machine');
  const reader = new KeyReader(
    source,
    messagePropertyReader((m, e) => RED.util.getMessageProperty(m as NodeMessage, e), property),
    source === 'msg' ? `msg.${property.replace(/^msg\./, '')}` : `the record's field "${property}"`,
  );
  return new MessageKeys(reader, undefined, onDeliveryError);
}

/** JSONata's errors are plain objects with a message (and a code, a position). */
function describe(error: unknown): string {
  const message = (error as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : String(error);
}
