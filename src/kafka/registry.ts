// Client for the parts of the Confluent Schema Registry REST API that the consumer and producer use. Schemas are
// cached by id forever (an id never changes meaning), subjects' ids for a while; misses are fetched once even when
// many records ask at the same time.
import avro from 'avsc';

export interface RegistryOptions {
  url: string;
  username?: string;
  password?: string;
  timeoutMs?: number;
}

export class RegistryError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'RegistryError';
  }
}

const CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';
// How long an unknown schema id is remembered as unknown, so a stream of bad records does not flood the registry.
const MISS_TTL_MS = 10_000;

export class SchemaRegistryClient {
  private readonly base: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly typesById = new Map<number, avro.Type>();
  private readonly pendingById = new Map<number, Promise<avro.Type>>();
  private readonly missesById = new Map<number, { at: number; error: Error }>();
  private readonly idsBySubjectSchema = new Map<string, Promise<number>>();
  /** Why the last request failed, for messages about a registry that cannot be reached. */
  lastError?: string;

  constructor(options: RegistryOptions) {
    this.base = options.url.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.headers = { Accept: `${CONTENT_TYPE}, application/json`, 'Content-Type': CONTENT_TYPE };
    if (options.username) {
      const token = Buffer.from(`${options.username}:${options.password ?? ''}`).toString('base64');
      this.headers.Authorization = `Basic ${token}`;
    }
  }

  /** The parsed writer schema for an id, if it has been fetched already. */
  cachedType(id: number): avro.Type | undefined {
    return this.typesById.get(id);
  }

  /** A recent "no such id" answer, so decoding can fail fast without asking again. */
  recentMiss(id: number): Error | undefined {
    const miss = this.missesById.get(id);
    if (!miss) return undefined;
    if (Date.now() - miss.at > MISS_TTL_MS) {
      this.missesById.delete(id);
      return undefined;
    }
    return miss.error;
  }

  async typeForId(id: number): Promise<avro.Type> {
    const cached = this.typesById.get(id);
    if (cached) return cached;
    const miss = this.recentMiss(id);
    if (miss) throw miss;
    let pending = this.pendingById.get(id);
    if (!pending) {
      pending = this.request<{ schema: string; schemaType?: string }>('GET', `/schemas/ids/${id}`)
        .then((body) => {
          if (body.schemaType && body.schemaType !== 'AVRO') {
            throw new RegistryError(`schema ${id} is ${body.schemaType}, not Avro`);
          }
          const type = avro.Type.forSchema(JSON.parse(body.schema) as avro.Schema);
          this.typesById.set(id, type);
          return type;
        })
        .catch((error: unknown) => {
          const err = error instanceof Error ? error : new Error(String(error));
          // Only a definite "not found" is remembered; network trouble is retried on the next record.
          if (err instanceof RegistryError && err.status === 404)
            this.missesById.set(id, { at: Date.now(), error: err });
          else this.lastError = err.message;
          throw err;
        })
        .finally(() => this.pendingById.delete(id));
      this.pendingById.set(id, pending);
    }
    return pending;
  }

  /** Id of `schema` under `subject`, registering it first when `register` is set. */
  async idForSchema(subject: string, schema: avro.Schema, register: boolean): Promise<number> {
    const text = JSON.stringify(schema);
    const key = `${register ? 'r' : 'l'}\u0000${subject}\u0000${text}`;
    let pending = this.idsBySubjectSchema.get(key);
    if (!pending) {
      const path = `/subjects/${encodeURIComponent(subject)}${register ? '/versions' : ''}`;
      pending = this.request<{ id: number }>('POST', path, { schema: text, schemaType: 'AVRO' }).then((body) => {
        if (typeof body.id !== 'number') throw new RegistryError(`registry gave no schema id for subject ${subject}`);
        this.typesById.set(body.id, avro.Type.forSchema(schema));
        return body.id;
      });
      pending.catch(() => this.idsBySubjectSchema.delete(key));
      this.idsBySubjectSchema.set(key, pending);
    }
    return pending;
  }

  /** Latest schema of a subject; not cached for long, since a new version may be registered at any time. */
  async latest(subject: string): Promise<{ id: number; type: avro.Type }> {
    const body = await this.request<{ id: number; schema: string }>(
      'GET',
      `/subjects/${encodeURIComponent(subject)}/versions/latest`,
    );
    let type = this.typesById.get(body.id);
    if (!type) {
      type = avro.Type.forSchema(JSON.parse(body.schema) as avro.Schema);
      this.typesById.set(body.id, type);
    }
    return { id: body.id, type };
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let response: Response;
    try {
      response = await fetch(this.base + path, {
        method,
        headers: this.headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      throw new RegistryError(`schema registry ${this.base} unreachable: ${(error as Error).message}`);
    }
    const text = await response.text();
    if (!response.ok) {
      let detail = text;
      try {
        detail = (JSON.parse(text) as { message?: string }).message ?? text;
      } catch {
        // not JSON: keep the text
      }
      throw new RegistryError(`schema registry ${method} ${path}: ${response.status} ${detail}`, response.status);
    }
    return JSON.parse(text) as T;
  }
}
