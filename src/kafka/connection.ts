// One connection per broker config: a single kafkajs client, one shared producer, the consumers created from it,
// and the connection state that every node using it shows. Users register so the producer is closed with the last.
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import tls, { type ConnectionOptions } from 'node:tls';
import {
  Kafka,
  logLevel,
  type Consumer,
  type ConsumerConfig,
  type KafkaConfig,
  type Producer,
  type SASLOptions,
} from 'kafkajs';
import { registerCompressionCodecs } from './compression';
import { classifyError, errorMessage, tlsProblem, type ErrorKind } from './errors';
import { applyKafkajsIdleLoopFix } from './kafkajs-patch';
import { atMost } from './sleep';
import { SchemaRegistryClient, type RegistryOptions } from './registry';

export type SaslMechanism = 'none' | 'plain' | 'scram-sha-256' | 'scram-sha-512';

export interface BrokerConfig {
  brokers: string[];
  clientId: string;
  tls?: {
    /** PEM text, or a path to a PEM file. */
    ca?: string;
    cert?: string;
    key?: string;
    passphrase?: string;
    rejectUnauthorized: boolean;
  };
  sasl?: { mechanism: Exclude<SaslMechanism, 'none'>; username: string; password: string };
  connectionTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** Longest wait between reconnect attempts. */
  reconnectMaxDelayMs?: number;
  registry?: RegistryOptions;
  log?: (level: 'debug' | 'warn' | 'error', message: string) => void;
}

export type ConnectionStatus = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'authFailed' | 'closed';

export interface ConnectionState {
  status: ConnectionStatus;
  /** When the next attempt is due (epoch ms), while reconnecting or after an auth failure. */
  nextRetryAt?: number;
  error?: string;
}

export function parseBrokerList(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map((b) => b.trim())
    .filter((b) => b.length > 0);
}

function pem(value: string | undefined): string | undefined {
  if (!value || !value.trim()) return undefined;
  return value.includes('-----BEGIN') ? value : fs.readFileSync(value.trim(), 'utf8');
}

const INITIAL_RETRY_MS = 500;

applyKafkajsIdleLoopFix();
registerCompressionCodecs();

export class KafkaConnection extends EventEmitter {
  readonly kafka: Kafka;
  readonly registry?: SchemaRegistryClient;
  private current: ConnectionState = { status: 'idle' };
  private readonly users = new Set<object>();
  private producer?: Producer;
  private producerConnected = false;
  private producerConnecting?: Promise<Producer>;
  private producerAttempts = 0;
  private closed = false;
  private readonly maxDelayMs: number;
  private readonly log: NonNullable<BrokerConfig['log']>;
  private readonly sleepers = new Set<() => void>();
  private readonly sockets = new Set<net.Socket>();
  private unusedWaiters: (() => void)[] = [];

  constructor(readonly config: BrokerConfig) {
    super();
    this.setMaxListeners(0);
    this.maxDelayMs = config.reconnectMaxDelayMs ?? 30_000;
    this.log = config.log ?? (() => undefined);
    const kafkaConfig: KafkaConfig = {
      clientId: config.clientId || 'node-red-stream-ml',
      brokers: config.brokers,
      connectionTimeout: config.connectionTimeoutMs ?? 10_000,
      requestTimeout: config.requestTimeoutMs ?? 30_000,
      // kafkajs gives up after these; our own loops then retry for as long as the node runs.
      retry: { initialRetryTime: 300, retries: 3, maxRetryTime: 3_000 },
      logLevel: logLevel.WARN,
      logCreator:
        () =>
        ({ level, log }) => {
          const text = `kafkajs ${log.message}${log.error ? `: ${String(log.error)}` : ''}`;
          this.log(level <= logLevel.ERROR ? 'debug' : 'debug', text);
        },
    };
    if (config.tls) {
      const ssl: ConnectionOptions = { rejectUnauthorized: config.tls.rejectUnauthorized };
      const ca = pem(config.tls.ca);
      const cert = pem(config.tls.cert);
      const key = pem(config.tls.key);
      if (ca) ssl.ca = [ca];
      if (cert) ssl.cert = cert;
      if (key) ssl.key = key;
      if (config.tls.passphrase) ssl.passphrase = config.tls.passphrase;
      kafkaConfig.ssl = ssl;
    }
    // kafkajs's own socket factory, plus a record of every socket: a client abandoned mid-reconnect can leave one
    // open, and none may outlive the config node.
    kafkaConfig.socketFactory = ({ host, port, ssl, onConnect }) => {
      const socket = ssl
        ? tls.connect({ host, port, ...(net.isIP(host) ? {} : { servername: host }), ...ssl }, onConnect)
        : net.connect({ host, port }, onConnect);
      socket.setKeepAlive(true, 60_000);
      // A refused or reset socket is the first sign of a broker going away, long before kafkajs gives up
      // retrying: show it at once (kafkajs keeps retrying; the clients report when they are through).
      socket.once('error', (error) => this.reportSocketError(error));
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      return socket;
    };
    if (config.sasl) kafkaConfig.sasl = { ...config.sasl } as SASLOptions;
    this.kafka = new Kafka(kafkaConfig);
    if (config.registry?.url) this.registry = new SchemaRegistryClient(config.registry);
  }

  get state(): ConnectionState {
    return this.current;
  }

  register(user: object): void {
    this.users.add(user);
  }

  /** Closes the shared producer when its last user leaves. */
  async deregister(user: object): Promise<void> {
    this.users.delete(user);
    if (this.users.size === 0) {
      await this.closeProducer();
      for (const wake of this.unusedWaiters.splice(0)) wake();
    }
  }

  get userCount(): number {
    return this.users.size;
  }

  /**
   * Closes once every user has deregistered, or after `timeoutMs`. The config node calls this from its own close:
   * Node-RED stops all nodes at once, and a producer still flushing must keep the client until it is done.
   */
  async closeWhenUnused(timeoutMs: number): Promise<void> {
    if (this.users.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        this.unusedWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    await this.close();
  }

  /** Wait before attempt number `attempt` (0-based): doubling from 0.5 s to the configured maximum, with jitter. */
  retryDelay(attempt: number): number {
    const base = Math.min(this.maxDelayMs, INITIAL_RETRY_MS * 2 ** Math.min(attempt, 16));
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  /** Users report what happened to their own client; the latest word becomes the connection's state. */
  reportConnected(): void {
    if (this.closed || this.current.status === 'connected') return;
    this.setState({ status: 'connected' });
  }

  private reportSocketError(error: Error): void {
    if (this.closed || this.current.status === 'authFailed') return;
    // A failed handshake is the final word on this configuration, not a connection that went away.
    const tls = tlsProblem(error);
    if (tls) {
      this.log('error', `Kafka ${this.config.brokers.join(',')}: ${tls}`);
      this.setState({ status: 'authFailed', error: tls });
      return;
    }
    const message = `${(error as NodeJS.ErrnoException).code ?? 'socket error'}: ${error.message}`;
    if (this.current.status === 'reconnecting' && this.current.error === message) return;
    if (this.current.status !== 'reconnecting')
      this.log('warn', `Kafka ${this.config.brokers.join(',')}: connection lost (${message})`);
    this.setState({ status: 'reconnecting', error: message });
  }

  reportConnecting(): void {
    if (this.closed || this.current.status === 'connected') return;
    // Keeps the reason of a failure shown while the next attempt is under way.
    if (this.current.status === 'idle') this.setState({ status: 'connecting' });
    else this.setState({ status: this.current.status, error: this.current.error });
  }

  reportFailure(error: unknown, nextRetryAt: number): ErrorKind {
    const kind = classifyError(error);
    if (this.closed) return kind;
    const message = errorMessage(error);
    const status: ConnectionStatus = kind === 'auth' ? 'authFailed' : 'reconnecting';
    if (this.current.status !== status || this.current.error !== message)
      this.log(kind === 'auth' ? 'error' : 'warn', `Kafka ${this.config.brokers.join(',')}: ${message}`);
    this.setState({ status, nextRetryAt, error: message });
    return kind;
  }

  private setState(state: ConnectionState): void {
    this.current = state;
    this.emit('state', state);
  }

  createConsumer(config: ConsumerConfig): Consumer {
    return this.kafka.consumer(config);
  }

  /** The shared producer, connected; waits and retries (with backoff) until it is, or the connection closes. */
  producerReady(): Promise<Producer> {
    if (this.producer && this.producerConnected) return Promise.resolve(this.producer);
    if (!this.producerConnecting) {
      this.producerConnecting = this.connectProducer().finally(() => {
        this.producerConnecting = undefined;
      });
    }
    return this.producerConnecting;
  }

  /** A send failed in a way that reconnecting may cure: the next producerReady() connects again. */
  producerFailed(error: unknown): ErrorKind {
    // A kafkajs producer reconnected in place can keep sockets of the old cluster state open: start afresh.
    if (this.producerConnected && this.producer) {
      const stale = this.producer;
      this.producer = undefined;
      void stale.disconnect().catch(() => undefined);
    }
    this.producerConnected = false;
    return this.reportFailure(error, Date.now() + this.retryDelay(this.producerAttempts));
  }

  private async connectProducer(): Promise<Producer> {
    for (;;) {
      if (this.closed) throw new Error('Kafka connection closed');
      if (!this.producer) {
        this.producer = this.kafka.producer({
          allowAutoTopicCreation: true,
          retry: { initialRetryTime: 300, retries: 3, maxRetryTime: 3_000 },
        });
      }
      this.reportConnecting();
      try {
        await this.producer.connect();
        this.producerConnected = true;
        this.producerAttempts = 0;
        this.reportConnected();
        return this.producer;
      } catch (error) {
        const failed = this.producer;
        this.producer = undefined;
        await failed?.disconnect().catch(() => undefined);
        const delay = this.retryDelay(this.producerAttempts++);
        const kind = this.reportFailure(error, Date.now() + delay);
        await this.sleep(kind === 'auth' ? Math.max(delay, this.maxDelayMs) : delay);
      }
    }
  }

  /** A timer that close() cancels, so nothing keeps Node-RED waiting. */
  sleep(ms: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleepers.add(wake);
    });
  }

  private async closeProducer(): Promise<void> {
    const producer = this.producer;
    this.producer = undefined;
    this.producerConnected = false;
    // Bounded: with the broker down, kafkajs may wait out its request timeouts.
    if (producer)
      await atMost(
        producer.disconnect().catch(() => undefined),
        5_000,
      );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const wake of [...this.sleepers]) wake();
    await this.closeProducer();
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    this.setState({ status: 'closed' });
    this.removeAllListeners();
  }

  get isClosed(): boolean {
    return this.closed;
  }
}
