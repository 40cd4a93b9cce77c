#!/usr/bin/env node
// The Shuttle demo. Coming soon: it will start a broker, Node-RED with the example flow, and replay the data.
console.log(
  'The Shuttle demo is coming soon: it lands with the example-flows issue. Meanwhile `npm test` runs everything.',
);
