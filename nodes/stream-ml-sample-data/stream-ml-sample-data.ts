// Node-RED adapter for the sample-data node: on each input, sends the records of a public data set (Shuttle), which
// it downloads once into the Node-RED user folder, so that an imported example runs with nothing to set up.
import os from 'node:os';
import path from 'node:path';
import type { Node, NodeAPI, NodeDef, NodeMessage } from 'node-red';
import { ensureShuttleCsv, readShuttleRecords, shuttleUrls } from '../../src/datasets/shuttle';

interface SampleDataDef extends NodeDef {
  dataset: string;
  send: string;
  limit: string | number;
  folder: string;
  url: string;
}

// One download at a time per folder, however many nodes or clicks ask for it.
const pending = new Map<string, Promise<string>>();

function shuttleCsvIn(folder: string, url: string, log: (line: string) => void): Promise<string> {
  let csv = pending.get(folder);
  if (!csv) {
    csv = ensureShuttleCsv({ outDir: folder, urls: url ? shuttleUrls(url) : undefined, log }).finally(() =>
      pending.delete(folder),
    );
    pending.set(folder, csv);
  }
  return csv;
}

export = function register(RED: NodeAPI): void {
  function SampleDataNode(this: Node, def: SampleDataDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    const userDir = (RED.settings.userDir as string | undefined) ?? path.join(os.homedir(), '.node-red');
    const folder = def.folder?.trim() || path.join(userDir, 'stream-ml-data', 'shuttle');
    const limit = Math.floor(Number(def.limit));
    const asBatch = def.send === 'batch';
    if (def.dataset && def.dataset !== 'shuttle') {
      node.status({ fill: 'red', shape: 'ring', text: `unknown data set ${def.dataset}` });
    }

    node.on('input', (msg: NodeMessage, send, done) => {
      // SHUTTLE_CSV (the environment, or the flow's env) names a CSV to use instead, as `npm run demo` sets it.
      const fromEnv = String(RED.util.evaluateNodeProperty('SHUTTLE_CSV', 'env', node, msg) ?? '').trim();
      if (!fromEnv) node.status({ fill: 'blue', shape: 'ring', text: 'getting the Shuttle data…' });
      const csv = fromEnv ? Promise.resolve(fromEnv) : shuttleCsvIn(folder, def.url?.trim(), (l) => node.log(l));
      csv
        .then((file) => {
          let records = readShuttleRecords(file);
          if (limit > 0) records = records.slice(0, limit);
          // Says which file a replay read: the kept download, or the one SHUTTLE_CSV names.
          node.log(`sending ${records.length} records from ${file}`);
          if (asBatch) send({ topic: 'shuttle', payload: records });
          else for (const record of records) send({ topic: 'shuttle', payload: record });
          node.status({ fill: 'green', shape: 'dot', text: `sent ${records.length.toLocaleString('en-US')} records` });
          done();
        })
        .catch((error: Error) => {
          const hint = fromEnv ? '' : ', or set the environment variable SHUTTLE_CSV to the path of a shuttle.csv';
          node.status({ fill: 'red', shape: 'ring', text: 'no Shuttle data: see the debug sidebar' });
          // As a string, so that Catch nodes and the debug sidebar read the message without an "Error:" prefix.
          node.error(`${error.message}${hint}`, msg);
          done();
        });
    });
  }
  RED.nodes.registerType('stream-ml-sample-data', SampleDataNode);
};
