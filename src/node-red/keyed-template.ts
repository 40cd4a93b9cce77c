// The template snapshot that new keys start from (the "a template snapshot" choice), kept in a file beside the
// keyed folder when the model's store is persistent, so a restart or redeploy keeps it as it keeps the keys' models.
// With the memory store there is no folder, and the template lives in memory only, as the models do.
import fs from 'node:fs/promises';
import { readFileIfPresent, writeFileDurably } from './durable-file';

export class TemplateFile {
  /** Writes one after another, so the last template sent is the one on disk. */
  private writing: Promise<void> = Promise.resolve();

  /** `folder`: the keyed models' folder (keyedFolderFor); undefined with the memory store. */
  constructor(folder: string | undefined) {
    // Beside the folder, not in it: every .json file in the folder is a key's model.
    this.file = folder === undefined ? undefined : `${folder}.template.json`;
  }

  readonly file: string | undefined;

  /** The template saved before, or undefined when there is none (or no file, with the memory store). */
  async read(): Promise<unknown> {
    if (!this.file) return undefined;
    const text = await readFileIfPresent(this.file);
    return text === undefined ? undefined : (JSON.parse(text) as unknown);
  }

  /** Saves the template (undefined: removes it); resolves once it is on disk, and rejects when it could not be. */
  save(snapshot: unknown): Promise<void> {
    const file = this.file;
    if (!file) return Promise.resolve();
    const next = this.writing
      .catch(() => undefined)
      .then(() =>
        snapshot === undefined ? fs.rm(file, { force: true }) : writeFileDurably(file, JSON.stringify(snapshot)),
      );
    this.writing = next;
    return next;
  }

  /** Resolves once the last save has ended, however it ended. */
  settled(): Promise<void> {
    return this.writing.catch(() => undefined);
  }
}
