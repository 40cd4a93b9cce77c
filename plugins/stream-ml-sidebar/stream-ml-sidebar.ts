// Runtime half of the stream ML sidebar, a Node-RED editor plugin: the editor lists a plugin as loaded once its
// runtime part has registered it. The admin routes and comms topic the sidebar reads come with the learner and
// scorer nodes (src/node-red/admin.ts), which the learner's dialog reads too.
import type { NodeAPI } from 'node-red';

export = function register(RED: NodeAPI): void {
  RED.plugins.registerPlugin('stream-ml-sidebar', { type: 'stream-ml-sidebar' });
};
