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
/** Rows per INSERT: bounds one statement to a few MiB. */
const ROWS_PER_WRITE = 32;
/** Writes tried at close before the rest is given up (the attempt's end is never held hostage by the store). */
const CLOSE_TRIES = 5;

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
    const room = this.opts.capBytes - this.kept[stream];
    if (room <= 0) return;
    const part = chunk.length <= room ? chunk : chunk.subarray(0, room);
    this.kept[stream] += part.length;
    this.enqueue(stream, this.decoders[stream].write(part));
  }

  /** Writes what is buffered and stops; resolves with what was printed and kept. Never throws. */
  async close(): Promise<OutputStoreSummary> {
    if (!this.closed) {
      this.closed = true;
      if (this.timer) clearInterval(this.timer);
      this.timer = null;
      for (const s of ['stdout', 'stderr'] as const) this.enqueue(s, this.decoders[s].end());
    }
    for (let i = 0; i < CLOSE_TRIES && (this.queue.length > 0 || this.unsent.length > 0 || this.held.stdout || this.held.stderr); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 100 * 2 ** i));
      await this.flush(true);
    }
    return {
      stdout: { bytes: this.printed.stdout, storedBytes: this.kept.stdout, truncated: this.printed.stdout > this.kept.stdout },
      stderr: { bytes: this.printed.stderr, storedBytes: this.kept.stderr, truncated: this.printed.stderr > this.kept.stderr },
    };
  }

  private enqueue(stream: OutputStreamName, text: string): void {
    if (!text) return;
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
  private async flush(final: boolean): Promise<void> {
    if (this.writing) {
      await this.writing;
      if (!final) return;
    }
    const segments = this.queue;
    this.queue = [];
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
          await this.opts.store.append(batch);
        } catch (err) {
          this.opts.onWriteError?.(err);
          return; // kept in `unsent`, in order, for the next flush
        }
        this.unsent = this.unsent.slice(batch.length);
      }
    };
    this.writing = write().finally(() => (this.writing = null));
    await this.writing;
  }
}
