// Writes a file so that after a process kill or power loss it holds either the old content or the new, whole: a
// temp file is written and flushed to disk, renamed over the target, and the folder flushed so the rename stays.
import fs from 'node:fs/promises';
import path from 'node:path';

let written = 0;

export async function writeFileDurably(file: string, data: string): Promise<void> {
  const folder = path.dirname(file);
  await fs.mkdir(folder, { recursive: true });
  const temp = `${file}.${process.pid}.${written++}.tmp`;
  const handle = await fs.open(temp, 'w');
  try {
    await handle.writeFile(data, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fs.rename(temp, file);
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw error;
  }
  await syncFolder(folder);
}

/** The file's text, or undefined when there is none. */
export async function readFileIfPresent(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

async function syncFolder(folder: string): Promise<void> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(folder, 'r');
    await handle.sync();
  } catch (error) {
    // Windows cannot open a folder for fsync; its rename is durable once the call returns.
    if (process.platform !== 'win32') throw error;
  } finally {
    await handle?.close();
  }
}
