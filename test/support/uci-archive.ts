// A stand-in for the UCI archive on 127.0.0.1 (this network cannot reach the real one): it serves the Shuttle zip
// and the legacy folder from the Shuttle files the tests found, and records each request.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { zipSync } from 'fflate';
import { shuttleDir } from './env';

export interface StandIn {
  /** The base address, to give as STREAM_ML_UCI_URL or a node's Download from. */
  base: string;
  /** The paths asked for, in order. */
  hits: string[];
  close(): Promise<void>;
}

/** Serves `routes` (URL path to bytes; anything else is a 404) on `port`, or on a free one. */
export async function serveRoutes(routes: Record<string, Uint8Array>, port = 0): Promise<StandIn> {
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(req.url ?? '');
    hits.push(url);
    const body = routes[url];
    res.writeHead(body ? 200 : 404).end(body);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const address = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${address.port}`,
    hits,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The UCI files as the archive serves them, from the folder the tests read the Shuttle data from. */
export function uciFiles(): { trn: Uint8Array; trnName: string; tst: Uint8Array } {
  const dir = shuttleDir();
  const z = path.join(dir, 'shuttle.trn.Z');
  const trnName = fs.existsSync(z) ? 'shuttle.trn.Z' : 'shuttle.trn';
  return {
    trn: fs.readFileSync(path.join(dir, trnName)),
    trnName,
    tst: fs.readFileSync(path.join(dir, 'shuttle.tst')),
  };
}

/** The archive's Shuttle zip and its legacy folder. */
export function serveUciArchive(port = 0): Promise<StandIn> {
  const { trn, trnName, tst } = uciFiles();
  const legacy = '/ml/machine-learning-databases/statlog/shuttle/';
  return serveRoutes(
    {
      '/static/public/148/statlog+shuttle.zip': zipSync({ [trnName]: trn, 'shuttle.tst': tst }),
      [legacy + trnName]: trn,
      [legacy + 'shuttle.tst']: tst,
    },
    port,
  );
}
