// Turning record keys and values into what a flow works with, and back. Decoders are synchronous on the hot path;
// the registry decoder fetches unknown schema ids for a whole batch first (prefetch), then decodes from its cache.
import avro from 'avsc';
import { jsonNestingExceeds, MAX_JSON_DEPTH } from './json-depth';
import type { SchemaRegistryClient } from './registry';

export type Encoding = 'string' | 'json' | 'buffer' | 'avro' | 'registry';
export const ENCODINGS: readonly Encoding[] = ['string', 'json', 'buffer', 'avro', 'registry'];

/** A record that could not be decoded; carries why, so the malformed-records policy can report it. */
export class MalformedRecordError extends Error {
  constructor(
    message: string,
    readonly part: 'key' | 'value',
  ) {
    super(message);
    this.name = 'MalformedRecordError';
  }
}

/** The registry could not be asked: not the record's fault, so the batch waits and is retried, never skipped. */
export class RegistryUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegistryUnavailableError';
  }
}

export interface Decoder {
  decode(data: Buffer | null): unknown;
  /** Fetches whatever decode() will need for these buffers (registry schemas); never rejects. */
  prefetch?(data: (Buffer | null)[]): Promise<void>;
}

export interface Encoder {
  encode(value: unknown, topic: string): Buffer | string | null | Promise<Buffer | null>;
}

export interface CodecOptions {
  encoding: Encoding;
  part: 'key' | 'value';
  /** Avro schema as JSON text, for 'avro' (and for 'registry' when producing). */
  schema?: string;
  registry?: SchemaRegistryClient;
  /** Producing with 'registry': register the schema under the subject when it is not there yet. */
  autoRegister?: boolean;
  /** Producing with 'registry': subject; default `<topic>-<part>` (TopicNameStrategy). */
  subject?: string;
}

export const CONFLUENT_MAGIC = 0;

export function parseAvroSchema(text: string | undefined, what: string): avro.Type {
  if (!text || !text.trim()) throw new Error(`${what}: an Avro schema is needed`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`${what}: the Avro schema is not valid JSON (${(error as Error).message})`);
  }
  try {
    return avro.Type.forSchema(json as avro.Schema);
  } catch (error) {
    throw new Error(`${what}: the Avro schema is not valid (${(error as Error).message})`);
  }
}

export function createDecoder(options: CodecOptions): Decoder {
  const { part } = options;
  const fail = (message: string): never => {
    throw new MalformedRecordError(message, part);
  };
  switch (options.encoding) {
    case 'buffer':
      return { decode: (data) => data };
    case 'string':
      return { decode: (data) => (data === null ? null : data.toString('utf8')) };
    case 'json':
      return {
        decode(data) {
          if (data === null) return null;
          if (jsonNestingExceeds(data, MAX_JSON_DEPTH))
            fail(`${part} is JSON nested more than ${MAX_JSON_DEPTH} levels deep`);
          try {
            return JSON.parse(data.toString('utf8')) as unknown;
          } catch (error) {
            return fail(`${part} is not valid JSON: ${(error as Error).message}`);
          }
        },
      };
    case 'avro': {
      const type = parseAvroSchema(options.schema, `${part} decoding`);
      return {
        decode(data) {
          if (data === null) return null;
          try {
            return type.fromBuffer(data);
          } catch (error) {
            return fail(`${part} does not match the Avro schema: ${(error as Error).message}`);
          }
        },
      };
    }
    case 'registry': {
      const registry = options.registry;
      if (!registry) throw new Error(`${part} decoding: Avro via schema registry needs a registry URL in the broker`);
      const schemaId = (data: Buffer): number => {
        if (data.length < 5 || data[0] !== CONFLUENT_MAGIC)
          fail(`${part} is not in the schema-registry wire format (no magic byte 0 and schema id)`);
        return data.readUInt32BE(1);
      };
      return {
        async prefetch(list) {
          const ids = new Set<number>();
          for (const data of list) {
            if (data && data.length >= 5 && data[0] === CONFLUENT_MAGIC) {
              const id = data.readUInt32BE(1);
              if (!registry.cachedType(id)) ids.add(id);
            }
          }
          await Promise.all([...ids].map((id) => registry.typeForId(id).catch(() => undefined)));
        },
        decode(data) {
          if (data === null) return null;
          const id = schemaId(data);
          const type = registry.cachedType(id);
          if (!type) {
            const miss = registry.recentMiss(id);
            if (miss) return fail(`${part} has unknown schema id ${id}: ${miss.message}`);
            throw new RegistryUnavailableError(
              `schema id ${id} of the ${part} could not be fetched: ${registry.lastError ?? 'schema registry unreachable'}`,
            );
          }
          try {
            return type.fromBuffer(data.subarray(5));
          } catch (error) {
            return fail(`${part} does not match its registry schema ${id}: ${(error as Error).message}`);
          }
        },
      };
    }
    default:
      throw new Error(`unknown encoding ${String(options.encoding)}`);
  }
}

function asBuffer(value: unknown, part: string): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw new Error(`${part} must be a Buffer or a string for the Buffer encoding, not ${typeof value}`);
}

function avroEncode(type: avro.Type, value: unknown, part: string): Buffer {
  const problems: string[] = [];
  if (!type.isValid(value, { errorHook: (path) => problems.push(path.join('.') || '(value)') })) {
    throw new Error(`${part} does not match the Avro schema (check ${problems.slice(0, 5).join(', ')})`);
  }
  return type.toBuffer(value);
}

export function createEncoder(options: CodecOptions): Encoder {
  const { part } = options;
  switch (options.encoding) {
    case 'buffer':
      return { encode: (value) => (value === null || value === undefined ? null : asBuffer(value, part)) };
    case 'string':
      return {
        encode(value) {
          if (value === null || value === undefined) return null;
          if (Buffer.isBuffer(value) || typeof value === 'string') return value;
          return typeof value === 'object' ? JSON.stringify(value) : String(value);
        },
      };
    case 'json':
      return {
        encode(value) {
          if (value === null || value === undefined) return null;
          if (Buffer.isBuffer(value)) return value;
          return JSON.stringify(value);
        },
      };
    case 'avro': {
      const type = parseAvroSchema(options.schema, `${part} encoding`);
      return { encode: (value) => (value === null || value === undefined ? null : avroEncode(type, value, part)) };
    }
    case 'registry': {
      const registry = options.registry;
      if (!registry) throw new Error(`${part} encoding: Avro via schema registry needs a registry URL in the broker`);
      const given = options.schema?.trim() ? parseAvroSchema(options.schema, `${part} encoding`) : undefined;
      // Per subject: the schema id and the type to encode with, resolved once.
      const resolved = new Map<string, { id: number; type: avro.Type }>();
      const resolve = async (subject: string): Promise<{ id: number; type: avro.Type }> => {
        let entry = resolved.get(subject);
        if (!entry) {
          entry = given
            ? { id: await registry.idForSchema(subject, given.schema(), options.autoRegister === true), type: given }
            : await registry.latest(subject);
          resolved.set(subject, entry);
        }
        return entry;
      };
      const frame = (id: number, type: avro.Type, value: unknown): Buffer => {
        const body = avroEncode(type, value, part);
        const header = Buffer.alloc(5);
        header[0] = CONFLUENT_MAGIC;
        header.writeUInt32BE(id, 1);
        return Buffer.concat([header, body]);
      };
      return {
        encode(value, topic) {
          if (value === null || value === undefined) return null;
          const subject = options.subject?.trim() || `${topic}-${part}`;
          const ready = resolved.get(subject);
          if (ready) return frame(ready.id, ready.type, value);
          return resolve(subject).then((entry) => frame(entry.id, entry.type, value));
        },
      };
    }
    default:
      throw new Error(`unknown encoding ${String(options.encoding)}`);
  }
}
