// Node-RED adapter for the online learner: learns each record into the model kept in flow context under a name.
import type { Node, NodeAPI, NodeDef, NodeMessage } from 'node-red';
import { createModel, modelFromJSON, type DataRecord, type Model, type ModelOptions } from '../../src/engine';
import { forgetSample, registerModelAdmin, sampleSlot } from '../../src/node-red/admin';
import { describeSchema, labelFieldsLearned, withLabelFields } from '../../src/node-red/label-fields';
import { RateMeter } from '../../src/node-red/rate';
import {
  parseAttributeTable,
  parseDetector,
  parseExtraDetectors,
  parseInvalidPolicy,
  parseOptionalPositive,
  sameAttributes,
  settingsNotInModel,
} from '../../src/node-red/model-config';
import { checkpointFileFor } from '../../src/node-red/checkpoint';
import { CheckpointBarrier } from '../../src/node-red/checkpoint-barrier';
import { ClosingState, holdMessage, markNotFinished, releaseMessage } from '../../src/node-red/unfinished';
import { acquireModel, releaseModel, type FlowContext } from '../../src/node-red/model-registry';
import { KafkaPositions } from '../../src/node-red/kafka-positions';
import { isBatch, messagePropertyReader, recordOf, recordsOf } from '../../src/node-red/records';
import { StartGate } from '../../src/node-red/start-gate';
import { withoutPositions } from '../../src/node-red/snapshots';
import { startKeyedLearner } from './keyed-learner';
import { fleetOptionFrom, type FleetOption, type FleetOptionDef } from './fleet-option';
import { FleetSharing } from '../../src/node-red/fleet-sharing';
import { isFleetMerge, type FleetModel } from '../../src/engine';

interface LearnerDef extends NodeDef, FleetOptionDef {
  model: string;
  store: string;
  field: string;
  attributes: unknown;
  detector: string;
  extraDetectors: unknown;
  halfLife: string | number;
  warmup: string | number;
  invalidValues: string;
  skipFlagged: boolean;
  commandProperty: string;
  statsInterval: string | number;
  saveInterval: string | number;
  keyed?: boolean;
  keySource?: string;
  keyProperty?: string;
  noKey?: string;
  maxLive?: string | number;
  allKeysAs?: string;
  template?: string;
}

type Send = (msg: NodeMessage | (NodeMessage | null)[]) => void;
type Done = (err?: Error) => void;

const COMMANDS = ['reset', 'forget', 'snapshot', 'load', 'merge', 'pause', 'resume', 'statistics'] as const;
type Command = (typeof COMMANDS)[number];

export = function register(RED: NodeAPI): void {
  registerModelAdmin(RED);

  function OnlineLearnerNode(this: Node, config: LearnerDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const modelName = (config.model || '').trim();
    const store = config.store || undefined;
    const field = config.field || 'payload';
    const getProperty = (m: object, e: string): unknown => RED.util.getMessageProperty(m as NodeMessage, e);
    const readRecords = messagePropertyReader(getProperty, field);
    const readCommand = messagePropertyReader(getProperty, config.commandProperty || 'topic');
    let options: ModelOptions;
    let statsEvery: number | undefined;
    let saveEvery: number;
    let fleetOption: FleetOption | undefined;
    try {
      if (!modelName) throw new Error('no model name: set one in the dialog');
      const detector = parseDetector(config.detector);
      options = {
        attributes: parseAttributeTable(config.attributes),
        detector,
        extraDetectors: parseExtraDetectors(config.extraDetectors, detector),
        halfLife: parseOptionalPositive(config.halfLife, 'the forgetting half-life'),
        warmupRecords: parseOptionalPositive(config.warmup, 'the warm-up'),
        invalidValues: parseInvalidPolicy(config.invalidValues),
      };
      statsEvery = parseOptionalPositive(config.statsInterval, 'the statistics interval');
      saveEvery = parseOptionalPositive(config.saveInterval, 'the save interval') ?? 10;
      fleetOption = fleetOptionFrom(RED, config, options);
    } catch (error) {
      node.error((error as Error).message);
      node.status({ fill: 'red', shape: 'ring', text: (error as Error).message });
      return;
    }
    // One model per key is its own adapter: with the option off, nothing below changes.
    if (config.keyed)
      return startKeyedLearner(RED, node, {
        modelName,
        store,
        options,
        readRecords,
        readCommand,
        skipFlagged: !!config.skipFlagged,
        statsEvery,
        saveEvery,
        keySource: config.keySource,
        keyProperty: config.keyProperty,
        noKey: config.noKey,
        maxLive: config.maxLive,
        allKeysAs: config.allKeysAs,
        template: config.template,
        fleet: fleetOption,
      });

    const sample = sampleSlot(node.id);
    const flowContext = node.context().flow as unknown as FlowContext;
    const flowId = (node as unknown as { z: string }).z ?? 'global';
    const entry = acquireModel(
      flowId,
      modelName,
      store,
      flowContext,
      checkpointFileFor(RED.settings, flowId, store, modelName),
    );
    entry.addLearner(node.id, options.attributes !== undefined);
    // Sharing on a model topic: the model served is this member's own merged with the others' (see fleet-sharing).
    const sharing = fleetOption
      ? new FleetSharing({
          ...fleetOption,
          modelName,
          warn: (message) => node.warn(message),
          serve: (serving) => entry.serve(serving),
        })
      : undefined;
    let fleet: FleetModel | undefined;
    if (sharing) entry.fleetSummary = () => sharing.summary();
    // With a persistent store, a Kafka record's message is finished (and its offset committable) only once a
    // durable checkpoint has it learned; in a fleet, once a contribution on the model topic has it.
    const barrier =
      sharing || entry.checkpointFile
        ? new CheckpointBarrier({
            save: () => (sharing ? sharing.checkpoint() : entry.save()),
            onError: (error) => {
              lastError = `checkpoint failed: ${error.message}`;
              node.warn(
                `saving model "${modelName}" failed: ${error.message}; its Kafka records wait for the next try`,
              );
              showStatus();
            },
          })
        : undefined;
    const positions = new KafkaPositions();
    const rate = new RateMeter();
    let paused = false;
    let invalid = 0;
    let skippedFlagged = 0;
    let replayed = 0;
    let lastError = '';
    // The table rows last warned about as a scorer's label field, so a redeploy of a scorer does not repeat it.
    let warnedLabels = '';
    // From a model that still has to guess its schema until the guess has been reported.
    let awaitingGuess = false;
    let started = false;

    /** Options for a new model: the scorers' label fields applied to the table, or handed to the guess. */
    function optionsWith(labelFields: string[]): ModelOptions {
      if (!options.attributes) return { ...options, labelFields };
      const { attributes, madeLabels } = withLabelFields(options.attributes, labelFields);
      const warned = madeLabels.join();
      if (madeLabels.length > 0 && warned !== warnedLabels) {
        const types = madeLabels.map((name) => `"${name}" ${attributes.find((a) => a.name === name)!.type}`);
        node.warn(
          `a scorer of model "${modelName}" reads ${quoted(madeLabels)} as its label: taken as the label, not ` +
            `learned (the attribute table types ${types.join(', ')})`,
        );
      }
      warnedLabels = warned;
      return { ...options, attributes };
    }

    /** The model to learn into: the kept one, unless it learns what it must not (then a new one, and a warning). */
    function modelFor(kept: Model | undefined): Model {
      const labelFields = entry.labelFieldNames();
      const wanted = optionsWith(labelFields);
      if (kept && wanted.attributes && !sameAttributes(kept.schema, wanted.attributes)) {
        const learned = labelFieldsLearned(kept.schema, labelFields);
        node.warn(
          learned.length > 0 && sameAttributes(kept.schema, options.attributes!)
            ? `model "${modelName}" learns ${quoted(learned)}, which a scorer reads as its label: starting a new model`
            : `the attribute table of model "${modelName}" changed: starting a new model`,
        );
        kept = undefined;
      }
      if (kept && !wanted.attributes) {
        const learned = labelFieldsLearned(kept.schema, labelFields);
        if (learned.length > 0) {
          node.warn(
            `model "${modelName}" learns ${quoted(learned)} as a feature, which a scorer reads as its label: ` +
              `starting a new model that takes it as the label`,
          );
          kept = undefined;
        } else kept.setLabelFields(labelFields);
      }
      return kept ?? createModel(wanted);
    }

    function useModel(next: Model): void {
      if (fleet) {
        fleet.replaceOwn(next);
        next = fleet.serving;
      }
      entry.replace(next);
      awaitingGuess = !next.schemaGuessed && next.schema.length === 0;
    }

    /** Says what was guessed: a guessed table is a trap when it learns an id or a label under another name. */
    function reportGuess(): void {
      node.warn(
        `guessed the attribute types of model "${modelName}" from the first records: ` +
          `${describeSchema(model().schema)}; fill the attribute table to fix them (the stream ML sidebar copies ` +
          `this guess into it)`,
      );
    }

    // The model is read from context once; messages that arrive meanwhile wait in order behind it.
    const starting = entry
      .load()
      .then(async (kept) => {
        if (entry.loadWarning) node.warn(entry.loadWarning);
        entry.loadWarning = undefined;
        let existing = kept;
        let next: Model;
        if (sharing) {
          node.status({ fill: 'yellow', shape: 'ring', text: `reading model topic ${fleetOption!.topic}` });
          // This member's contribution on the topic is what the fleet knows it learned: it wins over context.
          // A live model left by this learner before a redeploy is the fleet's merge, not what this member learned.
          const mine = kept && !isFleetMerge(kept) ? kept : undefined;
          fleet = await sharing.start((own) => modelFor((existing = own ?? mine)));
          next = fleet.own;
          entry.replace(fleet.serving);
        } else {
          next = modelFor(existing);
          useModel(next);
        }
        started = true;
        if (next !== existing) return saveOwn();
        const notApplied = settingsNotInModel(next, options);
        if (notApplied.length > 0)
          node.warn(
            `model "${modelName}" is kept as it was learned: ${notApplied.join(', ')} of this node apply ` +
              `after a reset (send the reset command)`,
          );
        if (next.schemaGuessed && !options.attributes) reportGuess();
      })
      .catch((error: Error) => {
        started = true;
        if (sharing && !fleet) fleet = sharing.adopt(createModel(optionsWith(entry.labelFieldNames())));
        node.error(`could not read model "${modelName}" from context: ${error.message}; starting a new model`);
        useModel(createModel(optionsWith(entry.labelFieldNames())));
      });
    if (sharing) entry.pending = starting.finally(() => (entry.pending = undefined));
    let gate = new StartGate(starting);

    // A scorer that starts after this learner (a later deploy, or a flow started in another order) may read a field
    // the model learns as its label: the model must not go on learning it.
    const stopListening = entry.onLabelFieldAdded(() => {
      if (!started || !entry.model) return; // the start reads the label fields itself
      const current = ownModel();
      const next = modelFor(current);
      if (next === current) return;
      useModel(next);
      saveOwn().catch((error: Error) => node.warn(`saving model "${modelName}" failed: ${error.message}`));
    });

    /** The model served (in a fleet: own merged with the others'). */
    const model = (): Model => entry.model as Model;
    /** What this learner learned itself: the model it keeps in context (the same as model() outside a fleet). */
    const ownModel = (): Model => (fleet ? fleet.own : model());
    const saveOwn = (): Promise<void> => entry.save(ownModel());

    function showStatus(): void {
      if (lastError) return node.status({ fill: 'red', shape: 'dot', text: lastError });
      const learned = model()?.recordsLearned ?? 0;
      const parts = [`${modelName}: ${learned.toLocaleString('en-US')} learned`];
      if (rate.perSecond > 0) parts.push(`${Math.round(rate.perSecond).toLocaleString('en-US')}/s`);
      if (invalid > 0) parts.push(`${invalid} invalid`);
      if (skippedFlagged > 0) parts.push(`${skippedFlagged} flagged skipped`);
      if (replayed > 0) parts.push(`${replayed.toLocaleString('en-US')} replayed, not relearned`);
      if (fleet)
        parts.push(`fleet of ${fleet.members().length} · own ${fleet.own.recordsLearned.toLocaleString('en-US')}`);
      node.status({
        fill: paused ? 'yellow' : 'green',
        shape: paused ? 'ring' : 'dot',
        text: (paused ? 'paused · ' : '') + parts.join(' · '),
      });
    }

    const statusTimer = setInterval(() => {
      rate.tick();
      entry.learnRate = rate.perSecond;
      entry.markChanged();
      showStatus();
    }, 1000);
    const saveTimer = setInterval(() => {
      saveOwn().catch((error: Error) => node.warn(`saving model "${modelName}" failed: ${error.message}`));
    }, saveEvery * 1000);
    const statsTimer =
      statsEvery === undefined
        ? undefined
        : setInterval(() => {
            if (entry.model)
              node.send([
                null,
                { topic: 'statistics', model: modelName, payload: model().statistics() } as NodeMessage,
              ]);
          }, statsEvery * 1000);

    function learn(msg: NodeMessage, records: DataRecord[]): void {
      for (let i = 0; i < records.length; i++) learnRecord(msg, records[i], i);
    }

    /** Learns a record once: a Kafka record the model has learned already (a replay) is counted, not learned. */
    function learnRecord(msg: NodeMessage, record: DataRecord, index: number): void {
      const source = positions.source;
      if (source !== undefined) {
        const position = positions.at(index);
        const learned = fleet ?? model().positions;
        if (learned.covers(source, position)) {
          replayed++;
          entry.replayed++;
          return;
        }
        // Also when the record turns out invalid or flagged: it is not to be counted again.
        learned.advance(source, position);
      }
      if (config.skipFlagged && isFlagged((msg as { anomaly?: unknown }).anomaly, index)) {
        skippedFlagged++;
        return;
      }
      // Under the 'error' policy the engine throws; one bad record must not stop the rest of a batch.
      let reason: string | undefined;
      try {
        const result = (fleet ?? model()).learnOne(record);
        reason = result.learned ? undefined : result.reason;
      } catch (error) {
        reason = (error as Error).message;
      }
      if (reason === undefined) {
        rate.count++;
      } else {
        invalid++;
        if (options.invalidValues === 'error') node.error(`record not learned: ${reason}`, msg);
      }
    }

    function runCommand(command: Command, msg: NodeMessage, send: Send): void {
      switch (command) {
        case 'reset':
          useModel(createModel(optionsWith(entry.labelFieldNames())));
          invalid = skippedFlagged = 0;
          void saveOwn();
          break;
        case 'forget':
          for (const record of recordsOf(readRecords(msg))) {
            const result = (fleet ?? model()).forgetOne(record);
            if (!result.learned) throw new Error(`record not forgotten: ${result.reason}`);
          }
          break;
        case 'snapshot':
          send([null, { topic: 'snapshot', model: modelName, payload: model().toJSON() } as NodeMessage]);
          break;
        case 'load': {
          const loaded = modelFromJSON(msg.payload);
          const learned = labelFieldsLearned(loaded.schema, entry.labelFieldNames());
          if (learned.length > 0)
            node.warn(
              `the model loaded into "${modelName}" learns ${quoted(learned)}, which a scorer reads as its label`,
            );
          loaded.setLabelFields(entry.labelFieldNames());
          useModel(loaded);
          void saveOwn();
          break;
        }
        case 'merge':
          // The other model's Kafka offsets are of another stream (another gateway's broker, most often): this
          // model's own offsets stay as they are.
          ownModel().merge(modelFromJSON(withoutPositions(msg.payload)));
          if (fleet) useModel(fleet.own);
          entry.markChanged();
          break;
        case 'pause':
          paused = true;
          break;
        case 'resume':
          paused = false;
          break;
        case 'statistics':
          send([null, { topic: 'statistics', model: modelName, payload: model().statistics() } as NodeMessage]);
          break;
      }
      showStatus();
    }

    // Not learned once closing, whether it arrived then or waited at the start gate: it could not reach the next node.
    const closingState = new ClosingState(`the learner of model "${modelName}"`);
    function handle(msg: NodeMessage, send: Send, done: Done): void {
      if (closingState.refused(msg, done)) return;
      try {
        const command = commandOf(readCommand(msg));
        if (command) {
          runCommand(command, msg, send);
          return done();
        }
        const value = readRecords(msg);
        let records = 1;
        if (isBatch(value)) {
          const batch = value as DataRecord[];
          records = batch.length;
          sample.record = batch[0];
          positions.read(msg, batch.length);
          if (!paused) learn(msg, batch);
        } else {
          // One record: no array per message.
          const record = recordOf(value);
          sample.record = record;
          positions.read(msg, 1);
          if (!paused) learnRecord(msg, record, 0);
        }
        if (awaitingGuess && model().schemaGuessed) {
          awaitingGuess = false;
          reportGuess();
        }
        lastError = '';
        send(msg); // to the first output, as [msg, null] would, without an array per message
        if (barrier && positions.source !== undefined && !paused) {
          holdMessage(msg._msgid);
          barrier.hold((durable) => {
            releaseMessage(msg._msgid);
            // Learned but not saved: the consumer must not commit it, so it comes again and is learned then.
            if (!durable)
              markNotFinished(msg, `the learner closed before a checkpoint of model "${modelName}" was written`);
            done();
          }, records);
        } else done();
      } catch (error) {
        lastError = (error as Error).message;
        showStatus();
        done(error as Error);
      }
    }

    node.on('input', (msg, send, done) => {
      if (gate.open) {
        // In a fleet, a partition not read lately may have been another member's: read the model topic first.
        const source = sharing && fleet ? KafkaPositions.sourceOf(msg) : undefined;
        const sync = source === undefined ? undefined : sharing!.syncFor(source);
        if (!sync) return handle(msg, send as Send, done);
        gate = new StartGate(
          sync.catch((error: Error) => node.warn(`reading the model topic failed: ${error.message}`)),
        );
      }
      gate.run(() => handle(msg, send as Send, done));
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      closingState.closing = true;
      stopListening();
      if (sharing) entry.fleetSummary = undefined;
      clearInterval(statusTimer);
      clearInterval(saveTimer);
      if (statsTimer) clearInterval(statsTimer);
      gate
        .settled()
        // The barrier's last checkpoint saves the model, except in a fleet (where it publishes).
        .then(() => (barrier ? barrier.close() : undefined))
        .then(() => (sharing || !barrier ? saveOwn() : undefined))
        .catch((error: Error) => node.warn(`saving model "${modelName}" failed: ${error.message}`))
        .then(() => sharing?.close())
        .finally(() => {
          entry.removeLearner(node.id);
          releaseModel(entry);
          forgetSample(node.id, sample);
          done();
        });
    });
    showStatus();
  }

  RED.nodes.registerType('stream-ml-online-learner', OnlineLearnerNode);
};

/** "a", "b": field names as a warning quotes them. */
function quoted(names: string[]): string {
  return names.map((name) => `"${name}"`).join(', ');
}

function commandOf(value: unknown): Command | undefined {
  // A Kafka message's topic is its Kafka topic: longer strings are no command, and cost no trim per message.
  if (typeof value !== 'string' || value.length > 32) return undefined;
  const command = value.trim().toLowerCase();
  return (COMMANDS as readonly string[]).includes(command) ? (command as Command) : undefined;
}

/** msg.anomaly from the scorer: one result, or one per record of a batch. */
function isFlagged(anomaly: unknown, index: number): boolean {
  const one = Array.isArray(anomaly) ? anomaly[index] : anomaly;
  return typeof one === 'object' && one !== null && (one as { isAnomaly?: unknown }).isAnomaly === true;
}
