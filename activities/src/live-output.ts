import { StringDecoder } from 'node:string_decoder';
import { maskSecrets } from '@task-scheduler/core';
import type { OutputChunkRow, OutputStoreSummary, OutputStreamName, RunOutputStore } from '@task-scheduler/db';

export interface LiveOutputOptions {
  store: Pick<RunOutputStore, 'append'>;
  ref: { runId: string; tenantId: string; shardIndex: number; attempt: number };
  /** Bytes kept per stream; the rest is counted and flagged truncated. */
  capBytes: number;
  /** How often buffered output is written. */
  flushMs: number;
  /** Told when a write fails (the rows are kept and sent again at the next flush). */
  onWriteError?: (err: unknown) => void;
}

/** Largest chunk row, in characters: a task printing megabytes between flushes makes several rows, not one huge one. */
const MAX_CHUNK_CHARS = 64 * 1024;
/** Rows per INSERT: bounds one statement (32 rows of at most 64 Ki characters: 2 to 8 MiB). */
const ROWS_PER_WRITE = 32;
/** Writes tried at close before the rest is given up (the attempt's end is never held hostage by the store). */
const CLOSE_TRIES = 5;
/** A write not answered by then counts as failed (it is sent again; a late commit of the first is harmless). */
const WRITE_TIMEOUT_MS = 5_000;
/** Output held in memory while the store does not answer; beyond it, output is counted and flagged, not kept. */
const MAX_BUFFERED_CHARS = 4 * 1024 * 1024;
/** Pieces one flush may turn into rows; beyond it each stream's pieces are joined (rows, not order, matter then). */
const MAX_PIECES_PER_FLUSH = 64;

/** The largest index <= `at` that does not fall inside a UTF-8 character of `buf`. */
export function utf8Boundary(buf: Buffer, at: number): number {
  let i = Math.min(at, buf.length);
  while (i > 0 && i < buf.length && (buf[i] & 0xc0) === 0x80) i--;
  return i;
}

interface Segment {
  stream: OutputStreamName;
  text: string;
}

/**
 * An attempt's output on its way to the run output store, written as the task
 * prints it: every `flushMs` what arrived since the last write becomes ordered
 * chunk rows. Secret values are masked in every row; a row never ends in what
 * could be the first characters of a secret (that suffix waits for the next
 * bytes), so a secret split across two prints or two flushes is masked too.
 * A failed write keeps its rows for the next flush: a short database outage
 * delays lines but loses none, and a retried write stores nothing twice.
 */
export class LiveOutput {
  private readonly decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
  private readonly printed = { stdout: 0, stderr: 0 };
  private readonly kept = { stdout: 0, stderr: 0 };
  /** Per stream, text held back because it may be the start of a secret. */
  private readonly held = { stdout: '', stderr: '' };
  private queue: Segment[] = [];
  private unsent: OutputChunkRow[] = [];
  private seq = 0;
  private secrets: readonly string[] = [];
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> | null = null;
  private closed = false;
  /** Characters queued and unsent: bounded, so a store that is down costs bounded memory. */
  private queuedChars = 0;
  private unsentChars = 0;
  /** Per stream: something printed was not stored (the cap, a full backlog, rows given up at close). */
  private readonly cut = { stdout: false, stderr: false };
  private warned = false;

  constructor(private readonly opts: LiveOutputOptions) {
    this.timer = setInterval(() => void this.flush(false), opts.flushMs);
    this.timer.unref();
  }

  /** Secret values to mask (longest first, as `secretValuesOf` gives them). */
  setSecrets(secrets: readonly string[]): void {
    this.secrets = secrets;
  }

  push(stream: OutputStreamName, chunk: Buffer): void {
    if (this.closed) return;
    this.printed[stream] += chunk.length;
    // Past the cap, or while the store is unreachable and the backlog is full: counted, not kept.
    const room = Math.min(this.opts.capBytes - this.kept[stream], MAX_BUFFERED_CHARS - this.queuedChars - this.unsentChars);
    if (room <= 0 || this.cut[stream]) {
      // Once cut, nothing more of the stream is kept: what is stored has no gaps.
      this.cut[stream] = true;
      return;
    }
    let part = chunk;
    if (chunk.length > room) {
      // Cut at a character boundary: a cut inside one would show as U+FFFD and could hide a secret's start.
      part = chunk.subarray(0, utf8Boundary(chunk, room));
      this.cut[stream] = true;
    }
    this.kept[stream] += part.length;
    this.enqueue(stream, this.decoders[stream].write(part));
  }

  /**
   * Writes what is buffered and stops, within `deadlineMs`; resolves with what was printed and kept (a
   * stream whose rows could not all be written is flagged truncated). Never throws.
   */
  async close(deadlineMs = 10_000): Promise<OutputStoreSummary> {
    const until = Date.now() + deadlineMs;
    if (!this.closed) {
      this.closed = true;
      if (this.timer) clearInterval(this.timer);
      this.timer = null;
      for (const s of ['stdout', 'stderr'] as const) this.enqueue(s, this.decoders[s].end());
    }
    const pending = (): boolean => this.queue.length > 0 || this.unsent.length > 0 || Boolean(this.held.stdout || this.held.stderr);
    for (let i = 0; i < CLOSE_TRIES && pending() && Date.now() < until; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** i, Math.max(0, until - Date.now()))));
      await this.flush(true, Math.max(1, until - Date.now()));
    }
    for (const r of this.unsent) this.cut[r.stream] = true;
    const summary = (s: OutputStreamName) => ({
      bytes: this.printed[s],
      storedBytes: this.kept[s],
      truncated: this.cut[s] || this.printed[s] > this.kept[s],
    });
    return { stdout: summary('stdout'), stderr: summary('stderr') };
  }

  private enqueue(stream: OutputStreamName, text: string): void {
    if (!text) return;
    this.queuedChars += text.length;
    const last = this.queue[this.queue.length - 1];
    if (last && last.stream === stream && last.text.length + text.length <= MAX_CHUNK_CHARS) last.text += text;
    else this.queue.push({ stream, text });
  }

  /**
   * Where to cut `text` at `at` or before it so that no secret is split: before any occurrence the cut would
   * go through, and (`openEnd`: more output may follow) before a suffix that a secret starts with.
   */
  private safeCut(text: string, at: number, openEnd: boolean): number {
    let cut = at;
    for (let moved = true; moved;) {
      moved = false;
      for (const s of this.secrets) {
        for (let i = Math.max(0, cut - s.length + 1); i < cut; i++) {
          const straddles = i + s.length > cut && text.startsWith(s, i);
          const startsAtEnd = openEnd && i + s.length > text.length && s.startsWith(text.slice(i));
          if (straddles || startsAtEnd) {
            cut = i;
            moved = true;
            break;
          }
        }
      }
    }
    return cut;
  }

  /** Turns the queue into rows (masking, holding back possible secret starts) and writes them with any unsent ones. */
  private async flush(final: boolean, timeoutMs = WRITE_TIMEOUT_MS): Promise<void> {
    if (this.writing) {
      await this.writing;
      if (!final) return;
    }
    let segments = this.queue;
    this.queue = [];
    this.queuedChars = 0;
    if (segments.length > MAX_PIECES_PER_FLUSH) {
      // A task switching streams at every write would make a row per write: each stream's text becomes one piece.
      const joined = new Map<OutputStreamName, Segment>();
      for (const seg of segments) {
        const j = joined.get(seg.stream);
        if (j) j.text += seg.text;
        else joined.set(seg.stream, { ...seg });
      }
      segments = [...joined.values()];
    }
    // Per stream, everything since the last flush is one text (with what was held back): its pieces (between
    // the other stream's) are cut where no secret goes through a cut, and the end that may start one is held.
    const pieces = new Map<Segment, string>();
    for (const stream of ['stdout', 'stderr'] as const) {
      const mine = segments.filter((seg) => seg.stream === stream);
      const text = this.held[stream] + mine.map((seg) => seg.text).join('');
      if (!text) continue;
      if (mine.length === 0) {
        // Only held text, at the end: it goes out as its own piece.
        const seg = { stream, text: '' };
        segments.push(seg);
        mine.push(seg);
      }
      // At the end of a stream the cap cut, a suffix that starts a secret is the start of one: masked whole.
      const capped = final && this.printed[stream] > this.kept[stream];
      const end = final && !capped ? text.length : this.safeCut(text, text.length, true);
      let from = 0;
      let boundary = this.held[stream].length;
      mine.forEach((seg, k) => {
        boundary += seg.text.length;
        const to = k === mine.length - 1 ? end : Math.max(from, Math.min(end, this.safeCut(text, boundary, false)));
        pieces.set(seg, text.slice(from, to) + (capped && k === mine.length - 1 && end < text.length ? '***' : ''));
        from = to;
      });
      this.held[stream] = capped ? '' : text.slice(end);
    }
    for (const seg of segments) {
      // PostgreSQL's text refuses NUL: stored as U+FFFD, as in the attempt's record.
      const text = maskSecrets(pieces.get(seg) ?? '', this.secrets).replaceAll('\u0000', '\uFFFD');
      for (let at = 0; at < text.length; at += MAX_CHUNK_CHARS) {
        this.unsent.push({ ...this.opts.ref, seq: ++this.seq, stream: seg.stream, text: text.slice(at, at + MAX_CHUNK_CHARS) });
      }
    }
    if (this.unsent.length === 0) return;
    const write = async (): Promise<void> => {
      while (this.unsent.length > 0) {
        const batch = this.unsent.slice(0, ROWS_PER_WRITE);
        try {
          let timer: NodeJS.Timeout | undefined;
          const limit = Math.min(timeoutMs, WRITE_TIMEOUT_MS);
          await Promise.race([
            this.opts.store.append(batch),
            new Promise((_, reject) => {
              timer = setTimeout(() => reject(new Error(`run output write not answered in ${limit} ms`)), limit);
            }),
          ]).finally(() => clearTimeout(timer));
        } catch (err) {
          // Told once per attempt: a database outage would otherwise log every flush of every attempt.
          if (!this.warned) this.opts.onWriteError?.(err);
          this.warned = true;
          return; // kept in `unsent`, in order, for the next flush
        }
        this.unsent = this.unsent.slice(batch.length);
      }
    };
    this.writing = write().finally(() => {
      this.writing = null;
      this.unsentChars = this.unsent.reduce((n, r) => n + r.text.length, 0);
    });
    await this.writing;
  }
}
