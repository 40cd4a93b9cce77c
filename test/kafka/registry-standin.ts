// A stand-in for a Confluent-compatible schema registry, serving only the endpoints the nodes use, for tests that
// have no real registry (SCHEMA_REGISTRY_URL unset). It counts requests so tests can check the client's caching.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StandInRegistry {
  url: string;
  requests: string[];
  /** False: every request gets 503, like a registry that is down. */
  available: boolean;
  close(): Promise<void>;
}

export async function startStandInRegistry(): Promise<StandInRegistry> {
  const schemas: string[] = []; // id - 1 → schema text
  const subjects = new Map<string, number[]>(); // subject → ids by version
  const requests: string[] = [];
  const standIn: StandInRegistry = {
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
      if (!standIn.available) return send(res, 503, { error_code: 50302, message: 'stand-in registry is down' });
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
