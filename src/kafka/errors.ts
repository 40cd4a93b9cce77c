// Sorting kafkajs errors into what a caller should do about them: retry, stop and wait for a fix, or give up on one
// record. kafkajs wraps the real cause (KafkaJSNumberOfRetriesExceeded, KafkaJSNonRetriableError), so walk the chain.

export type ErrorKind = 'retry' | 'auth' | 'fatal';

interface ErrorLike {
  name?: string;
  message?: string;
  retriable?: boolean;
  type?: string;
  code?: unknown;
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

// Node's codes for a server certificate that failed verification (OpenSSL's X509_V_ERR names, and Node's own).
const CERTIFICATE_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_CHAIN_TOO_LONG',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'PATH_LENGTH_EXCEEDED',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * A short description of a failed TLS handshake, or undefined for any other error. kafkajs keeps Node's error code
 * but not its text for OpenSSL errors, whose message is a raw OpenSSL line: say what happened instead.
 */
export function tlsProblem(error: unknown): string | undefined {
  for (const e of chain(error)) {
    const code = typeof e.code === 'string' ? e.code : '';
    if (CERTIFICATE_CODES.has(code)) return `TLS: ${(e.message ?? code).replace(/^Connection error: /, '')}`;
    // OpenSSL's alerts from the broker: ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE, and ERR_SSL_SSL/TLS_ALERT_… in
    // newer OpenSSL 3 releases (Node 22).
    const alert = /^ERR_SSL_.*ALERT_(\w+)$/.exec(code)?.[1];
    if (alert) {
      const name = alert.toLowerCase().replace(/_/g, ' ');
      return /CERTIFICATE|UNKNOWN_CA/.test(alert)
        ? `TLS: client certificate refused (${name})`
        : `TLS: handshake refused (${name})`;
    }
    if (code.startsWith('ERR_SSL_'))
      return `TLS: handshake failed (${code.slice('ERR_SSL_'.length).toLowerCase().replace(/_/g, ' ')})`;
  }
  return undefined;
}

export function classifyError(error: unknown): ErrorKind {
  const links = chain(error);
  if (links.some((e) => e.name === 'KafkaJSSASLAuthenticationError' || e.type === 'SASL_AUTHENTICATION_FAILED'))
    return 'auth';
  // A certificate does not mend itself: wait for a fix like a wrong password, instead of retrying at once.
  if (tlsProblem(error)) return 'auth';
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
  const tls = tlsProblem(error);
  if (tls) return tls;
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
