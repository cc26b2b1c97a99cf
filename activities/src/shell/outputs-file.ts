import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, readdirSync, rmSync } from 'node:fs';
import { chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alive } from './sandbox/uid-leases';
import { TaskOutputsError } from './task-outputs';

/** Name of the file in an attempt's outputs directory; isolated tasks see it at SANDBOX_OUTPUTS_FILE. */
const FILE_NAME = 'outputs';

/**
 * The host file an attempt writes its outputs to (`$TASK_OUTPUTS`), in a
 * directory of its own: mode 0700, owned by the uid the task runs as, so no
 * other attempt's uid can read it. Isolated attempts get only the file bound
 * into their sandbox (not the directory): they can write it but cannot create
 * more files next to it, replace it or link it elsewhere, so the host disk
 * holds at most one file per attempt, bounded by the attempt's RLIMIT_FSIZE,
 * and the worker ends the attempt when it grows past the cap.
 */
export class OutputsFile {
  private constructor(
    readonly dir: string,
    private readonly owner: { uid: number; gid: number } | null,
  ) {}

  get path(): string {
    return join(this.dir, FILE_NAME);
  }

  /**
   * Creates the directory and an empty file: under `base` (isolated; named
   * after the worker's pid so a later worker can remove what a crashed one
   * left), else in a private temporary directory.
   */
  static async create(base: string | null, owner: { uid: number; gid: number } | null): Promise<OutputsFile> {
    let dir: string;
    if (base) {
      dir = join(base, `${process.pid}-${randomBytes(8).toString('hex')}`);
      await mkdir(dir, { mode: 0o700 });
    } else {
      dir = await mkdtemp(join(tmpdir(), 'task-outputs-'));
    }
    const file = new OutputsFile(dir, owner);
    try {
      await writeFile(file.path, '', { mode: 0o600, flag: 'wx' });
      if (owner) {
        await chown(file.path, owner.uid, owner.gid);
        await chown(dir, owner.uid, owner.gid);
      }
    } catch (err) {
      await file.remove();
      throw err;
    }
    return file;
  }

  /** Bytes in the file now (0 when it is gone or not a regular file); symlinks are not followed. */
  size(): number {
    try {
      const st = lstatSync(this.path);
      return st.isFile() ? st.size : 0;
    } catch {
      return 0;
    }
  }

  /**
   * The file's bytes, or null when the task removed it. Never follows a link
   * the task made: opened with O_NOFOLLOW (a symlink is refused), and it must
   * be a regular file of the task's own uid with one link (a hard link to
   * another file is refused). Reads at most `capBytes + 1` bytes.
   */
  read(capBytes: number): Buffer | null {
    let fd: number;
    try {
      // O_NONBLOCK: a FIFO put in its place must not hang the worker.
      fd = openSync(this.path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return null;
      if (code === 'ELOOP') throw new TaskOutputsError('$TASK_OUTPUTS is a symbolic link; write the outputs into the file itself');
      throw err;
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new TaskOutputsError('$TASK_OUTPUTS is not a regular file');
      const uid = this.owner?.uid ?? process.getuid?.();
      if (st.nlink !== 1 || (uid !== undefined && st.uid !== uid)) {
        throw new TaskOutputsError('$TASK_OUTPUTS was replaced by a link to another file');
      }
      if (st.size > capBytes) {
        throw new TaskOutputsError(
          `$TASK_OUTPUTS is ${st.size.toLocaleString('en-US')} bytes; at most ${capBytes.toLocaleString('en-US')} are taken`,
        );
      }
      const buf = Buffer.alloc(capBytes + 1);
      let n = 0;
      // Bounded: each read returns at least one byte or ends the loop, and the buffer is capBytes + 1.
      while (n < buf.length) {
        const got = readSync(fd, buf, n, buf.length - n, n);
        if (got === 0) break;
        n += got;
      }
      // The parser refuses a file over the cap, whatever fstat said a moment before.
      return buf.subarray(0, n);
    } finally {
      closeSync(fd);
    }
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Longer than any attempt may run (timeoutSeconds ≤ 86,400, plus the report margin). */
const STALE_AFTER_MS = 25 * 3600 * 1000;

/**
 * Removes outputs directories under `base` that a worker killed mid-attempt
 * left behind: its pid is gone and the directory is older than any attempt
 * can run. The age matters where workers of several pods share the state
 * directory: a pid of another pid namespace looks gone from here.
 */
export function removeStaleOutputs(base: string, now: number = Date.now()): void {
  for (const name of readdirSync(base)) {
    const pid = /^(\d+)-[0-9a-f]+$/.exec(name)?.[1];
    if (!pid || Number(pid) === process.pid || alive(Number(pid))) continue;
    const path = join(base, name);
    try {
      if (now - lstatSync(path).mtimeMs < STALE_AFTER_MS) continue;
    } catch {
      continue; // removed meanwhile
    }
    rmSync(path, { recursive: true, force: true });
  }
}
