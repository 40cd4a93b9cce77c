// Codecs, the registry client and error sorting, without a broker.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createDecoder, createEncoder, MalformedRecordError } from '../../src/kafka/codecs';
import { classifyError, errorMessage, tlsProblem } from '../../src/kafka/errors';
import { parseTopics } from '../../src/kafka/consumer';
import { SchemaRegistryClient } from '../../src/kafka/registry';
import { startTestRegistry, type TestRegistry } from './test-registry';

const SCHEMA = JSON.stringify({ type: 'record', name: 'P', fields: [{ name: 'x', type: 'int' }] });

describe('decoders', () => {
  test('string, JSON and Buffer decode, and null stays null (a tombstone)', () => {
    assert.equal(createDecoder({ encoding: 'string', part: 'value' }).decode(Buffer.from('hé')), 'hé');
    assert.deepEqual(createDecoder({ encoding: 'json', part: 'value' }).decode(Buffer.from('{"a":[1]}')), { a: [1] });
    const raw = Buffer.from([1, 2]);
    assert.equal(createDecoder({ encoding: 'buffer', part: 'value' }).decode(raw), raw);
    for (const encoding of ['string', 'json', 'buffer', 'avro'] as const)
      assert.equal(createDecoder({ encoding, part: 'value', schema: SCHEMA }).decode(null), null);
  });

  test('bad JSON and non-matching Avro throw MalformedRecordError naming the part', () => {
    assert.throws(
      () => createDecoder({ encoding: 'json', part: 'key' }).decode(Buffer.from('{')),
      (e: unknown) => e instanceof MalformedRecordError && e.part === 'key' && /not valid JSON/.test(e.message),
    );
    assert.throws(
      () => createDecoder({ encoding: 'avro', part: 'value', schema: SCHEMA }).decode(Buffer.from([0x02, 0x02])),
      /does not match the Avro schema/,
    );
  });

  test('an invalid Avro schema is a configuration error, not a malformed record', () => {
    assert.throws(() => createDecoder({ encoding: 'avro', part: 'value', schema: '{"type":"nope"}' }), /not valid/);
    assert.throws(() => createDecoder({ encoding: 'avro', part: 'value', schema: '' }), /an Avro schema is needed/);
    assert.throws(() => createDecoder({ encoding: 'registry', part: 'value' }), /registry URL/);
  });
});

describe('encoders', () => {
  test('string passes strings and Buffers, serialises objects; JSON always serialises', () => {
    const s = createEncoder({ encoding: 'string', part: 'value' });
    assert.equal(s.encode('a', 't'), 'a');
    assert.equal(s.encode({ a: 1 }, 't'), '{"a":1}');
    assert.equal(s.encode(5, 't'), '5');
    const j = createEncoder({ encoding: 'json', part: 'value' });
    assert.equal(j.encode('a', 't'), '"a"');
    assert.equal(j.encode(null, 't'), null);
  });

  test('Buffer refuses what is not bytes; Avro says which field is wrong', () => {
    assert.throws(() => createEncoder({ encoding: 'buffer', part: 'value' }).encode({}, 't'), /Buffer or a string/);
    const avro = createEncoder({ encoding: 'avro', part: 'value', schema: SCHEMA });
    assert.deepEqual(avro.encode({ x: 1 }, 't'), Buffer.from([0x02]));
    assert.throws(() => avro.encode({ x: 'one' }, 't'), /does not match the Avro schema \(check x\)/);
  });
});

describe('schema registry client (the registry at SCHEMA_REGISTRY_URL, else the in-test stand-in)', () => {
  let registry: TestRegistry;
  before(async () => {
    registry = await startTestRegistry(process.env.SCHEMA_REGISTRY_URL);
  });
  after(() => registry.close());

  test('registers once, frames with magic byte and id, and decodes from cache', async () => {
    const client = new SchemaRegistryClient({ url: registry.url });
    const encoder = createEncoder({
      encoding: 'registry',
      part: 'value',
      schema: SCHEMA,
      autoRegister: true,
      registry: client,
    });
    const first = await encoder.encode({ x: 7 }, 'topic-a');
    const second = encoder.encode({ x: 8 }, 'topic-a'); // id known: synchronous now
    assert.ok(Buffer.isBuffer(first) && Buffer.isBuffer(second));
    assert.equal(first[0], 0);
    const id = first.readUInt32BE(1);
    const fresh = new SchemaRegistryClient({ url: registry.url });
    const decoder = createDecoder({ encoding: 'registry', part: 'value', registry: fresh });
    await decoder.prefetch?.([first, second, first]);
    assert.deepEqual({ ...(decoder.decode(first) as object) }, { x: 7 });
    assert.deepEqual({ ...(decoder.decode(second) as object) }, { x: 8 });
    assert.equal(registry.requests.filter((r) => r === `GET /schemas/ids/${id}`).length, 1);
    assert.equal(registry.requests.filter((r) => r === 'POST /subjects/topic-a-value/versions').length, 1);
  });

  test('unknown ids and unframed bytes are malformed records', async () => {
    const client = new SchemaRegistryClient({ url: registry.url });
    const decoder = createDecoder({ encoding: 'registry', part: 'value', registry: client });
    const unknown = Buffer.from([0, 0, 0, 0x30, 0x39, 0]);
    await decoder.prefetch?.([unknown]);
    assert.throws(() => decoder.decode(unknown), /unknown schema id 12345: .*404/);
    assert.throws(() => decoder.decode(Buffer.from('{"json":1}')), /not in the schema-registry wire format/);
  });

  test('an unreachable registry is reported as such', async () => {
    const client = new SchemaRegistryClient({ url: 'http://127.0.0.1:9', timeoutMs: 2_000 });
    await assert.rejects(client.typeForId(1), /unreachable/);
  });
});

test('kafkajs errors sort into retry, auth and fatal', () => {
  assert.equal(classifyError({ name: 'KafkaJSConnectionError', retriable: true }), 'retry');
  assert.equal(
    classifyError({ name: 'KafkaJSNumberOfRetriesExceeded', cause: { name: 'KafkaJSConnectionError' } }),
    'retry',
  );
  assert.equal(classifyError({ name: 'KafkaJSSASLAuthenticationError', retriable: false }), 'auth');
  assert.equal(classifyError({ name: 'KafkaJSProtocolError', type: 'MESSAGE_TOO_LARGE', retriable: false }), 'fatal');
  assert.equal(classifyError(new Error('connect ECONNREFUSED 127.0.0.1:9092')), 'retry');
});

test('a failed TLS handshake is named in words and waits for a fix, like a wrong password', () => {
  // How kafkajs hands them over: its connection error keeps Node's code, the retrier wraps it.
  const wrapped = (code: string, message: string): object => ({
    name: 'KafkaJSNumberOfRetriesExceeded',
    message: `Connection error: ${message}`,
    cause: { name: 'KafkaJSConnectionError', message: `Connection error: ${message}`, code },
  });
  const untrusted = wrapped('SELF_SIGNED_CERT_IN_CHAIN', 'self-signed certificate in certificate chain');
  assert.equal(classifyError(untrusted), 'auth');
  assert.equal(errorMessage(untrusted), 'TLS: self-signed certificate in certificate chain');
  const openssl = '80EC46D1AA7F0000:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate';
  // OpenSSL 3.0 (Node 20) and later OpenSSL 3 releases (Node 22) name the same alert differently.
  for (const code of ['ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'ERR_SSL_SSL/TLS_ALERT_BAD_CERTIFICATE'])
    assert.equal(errorMessage(wrapped(code, openssl)), 'TLS: client certificate refused (bad certificate)');
  assert.equal(
    tlsProblem(Object.assign(new Error(openssl), { code: 'ERR_SSL_WRONG_VERSION_NUMBER' })),
    'TLS: handshake failed (wrong version number)',
  );
  assert.equal(tlsProblem(new Error('connect ECONNREFUSED 127.0.0.1:9093')), undefined);
});

test('topics: a list, or one pattern', () => {
  assert.deepEqual(parseTopics(' a, b  c ', false), ['a', 'b', 'c']);
  const [pattern] = parseTopics('^sensor-\\d{1,3}$', true);
  assert.ok(pattern instanceof RegExp && pattern.test('sensor-12'));
  assert.deepEqual(parseTopics('  ', true), []);
});
