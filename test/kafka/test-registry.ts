// The schema registry a test talks to. With a real Confluent-compatible registry (SCHEMA_REGISTRY_URL, which
// `npm test` sets to the Apicurio Registry it starts) the test gets a recording proxy in front of it; without one
// (a test file run on its own) a stand-in serving only the endpoints the nodes use. Either way the test sees every
// request, so it can check the client's caching, and can take the registry "down" (503) and bring it back.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TestRegistry {
  url: string;
  /** "METHOD /path" of every request, the path relative to the registry's base URL. */
  requests: string[];
  /** False: every request gets 503, like a registry that is down. */
  available: boolean;
  close(): Promise<void>;
}

/** A proxy to the real registry at `realUrl` when given, else the in-test stand-in. */
export async function startTestRegistry(realUrl: string | undefined): Promise<TestRegistry> {
  return realUrl ? startRecordingProxy(realUrl) : startStandInRegistry();
}

const DOWN = { error_code: 50302, message: 'test registry is down' };

/** Forwards every request to the registry at `target` and records it; answers 503 while not `available`. */
export async function startRecordingProxy(target: string): Promise<TestRegistry> {
  const base = target.replace(/\/+$/, '');
  const requests: string[] = [];
  const proxy: TestRegistry = {
    url: '',
    requests,
    available: true,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = req.url ?? '';
      requests.push(`${req.method} ${url}`);
      if (!proxy.available) {
        res.writeHead(503, { 'Content-Type': 'application/vnd.schemaregistry.v1+json' });
        return res.end(JSON.stringify(DOWN));
      }
      const headers: Record<string, string> = {};
      for (const name of ['accept', 'content-type', 'authorization']) {
        const value = req.headers[name];
        if (typeof value === 'string') headers[name] = value;
      }
      const body = chunks.length > 0 ? Buffer.concat(chunks) : undefined;
      fetch(base + url, { method: req.method, headers, body, signal: AbortSignal.timeout(10_000) })
        .then(async (upstream) => {
          const text = Buffer.from(await upstream.arrayBuffer());
          res.writeHead(upstream.status, {
            'Content-Type': upstream.headers.get('content-type') ?? 'application/json',
          });
          res.end(text);
        })
        .catch((error: Error) => {
          res.writeHead(502, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify({ error_code: 50200, message: `proxy: ${error.message}` }));
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  proxy.url = `http://127.0.0.1:${port}`;
  return proxy;
}

export async function startStandInRegistry(): Promise<TestRegistry> {
  const schemas: string[] = []; // id - 1 → schema text
  const subjects = new Map<string, number[]>(); // subject → ids by version
  const requests: string[] = [];
  const standIn: TestRegistry = {
    url: '',
    requests,
    available: true,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const send = (res: http.ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'Content-Type': 'application/vnd.schemaregistry.v1+json' });
    res.end(JSON.stringify(body));
  };
  const canonical = (text: string): string => JSON.stringify(JSON.parse(text));
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const url = req.url ?? '';
      requests.push(`${req.method} ${url}`);
      if (!standIn.available) return send(res, 503, DOWN);
      let m: RegExpExecArray | null;
      if (req.method === 'GET' && (m = /^\/schemas\/ids\/(\d+)$/.exec(url))) {
        const schema = schemas[Number(m[1]) - 1];
        return schema ? send(res, 200, { schema }) : send(res, 404, { error_code: 40403, message: 'Schema not found' });
      }
      if (req.method === 'GET' && (m = /^\/subjects\/([^/]+)\/versions\/latest$/.exec(url))) {
        const subject = decodeURIComponent(m[1]);
        const ids = subjects.get(subject);
        if (!ids) return send(res, 404, { error_code: 40401, message: 'Subject not found' });
        const id = ids[ids.length - 1];
        return send(res, 200, { subject, id, version: ids.length, schema: schemas[id - 1] });
      }
      if (req.method === 'POST' && (m = /^\/subjects\/([^/]+)(\/versions)?$/.exec(url))) {
        const subject = decodeURIComponent(m[1]);
        const schema = canonical((JSON.parse(body) as { schema: string }).schema);
        let id = schemas.indexOf(schema) + 1;
        const ids = subjects.get(subject) ?? [];
        if (m[2]) {
          if (id === 0) id = schemas.push(schema);
          if (!ids.includes(id)) ids.push(id);
          subjects.set(subject, ids);
          return send(res, 200, { id });
        }
        if (id === 0 || !ids.includes(id)) return send(res, 404, { error_code: 40403, message: 'Schema not found' });
        return send(res, 200, { subject, id, version: ids.indexOf(id) + 1, schema });
      }
      send(res, 404, { error_code: 404, message: `not served by the stand-in: ${req.method} ${url}` });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  standIn.url = `http://127.0.0.1:${port}`;
  return standIn;
}
