// Sorting kafkajs errors into what a caller should do about them: retry, stop and wait for a fix, or give up on one
// record. kafkajs wraps the real cause (KafkaJSNumberOfRetriesExceeded, KafkaJSNonRetriableError), so walk the chain.

export type ErrorKind = 'retry' | 'auth' | 'fatal';

interface ErrorLike {
  name?: string;
  message?: string;
  retriable?: boolean;
  type?: string;
  cause?: unknown;
  originalError?: unknown;
}

function chain(error: unknown): ErrorLike[] {
  const out: ErrorLike[] = [];
  let current: unknown = error;
  // Bounded: a cause chain longer than this is a cycle.
  for (let i = 0; i < 8 && current && typeof current === 'object'; i++) {
    const e = current as ErrorLike;
    out.push(e);
    current = e.cause ?? e.originalError;
  }
  return out;
}

const NETWORK_NAMES = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSBrokerNotFound',
  'KafkaJSNoBrokerAvailableError',
  'KafkaJSMetadataNotLoaded',
  'KafkaJSTopicMetadataNotLoaded',
  'KafkaJSLockTimeout',
  'KafkaJSGroupCoordinatorNotFound',
  'KafkaJSNumberOfRetriesExceeded',
  'KafkaJSStaleTopicMetadataAssignment',
  'RegistryUnavailableError',
]);

// Protocol errors whose retriable flag is false but that go away when the cluster settles or credentials change.
const TRANSIENT_TYPES = new Set(['COORDINATOR_NOT_AVAILABLE', 'NOT_COORDINATOR', 'REBALANCE_IN_PROGRESS']);

export function classifyError(error: unknown): ErrorKind {
  const links = chain(error);
  if (links.some((e) => e.name === 'KafkaJSSASLAuthenticationError' || e.type === 'SASL_AUTHENTICATION_FAILED'))
    return 'auth';
  if (links.some((e) => e.type === 'TOPIC_AUTHORIZATION_FAILED' || e.type === 'GROUP_AUTHORIZATION_FAILED'))
    return 'auth';
  const root = links[links.length - 1];
  if (!root) return 'fatal';
  if (links.some((e) => e.name !== undefined && NETWORK_NAMES.has(e.name) && e !== links[0])) return 'retry';
  if (root.type && TRANSIENT_TYPES.has(root.type)) return 'retry';
  if (root.name !== undefined && NETWORK_NAMES.has(root.name)) return 'retry';
  if (root.retriable === true) return 'retry';
  // Plain socket errors (ECONNREFUSED and the like) carry a code, not a kafkajs name.
  if (/ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENOTFOUND|socket hang up/i.test(root.message ?? ''))
    return 'retry';
  return 'fatal';
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    const root = chain(error).pop();
    return root && root !== error && root.message && root.message !== error.message
      ? `${error.message} (${root.message})`
      : error.message;
  }
  return String(error);
}

export function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
