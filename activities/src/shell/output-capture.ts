import { utf8Boundary } from '../live-output';
import type { CapturedStream } from '@task-scheduler/contracts';

/** Keeps the first `capBytes` bytes of a stream (and its last `tailBytes`) and counts the rest. */
export class OutputCapture {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  private total = 0;
  private tail: Buffer = Buffer.alloc(0);
  private full = false;

  constructor(
    private readonly capBytes: number,
    private readonly tailBytes = 0,
  ) {}

  push(chunk: Buffer): void {
    this.total += chunk.length;
    if (this.tailBytes > 0) {
      const joined = this.tail.length + chunk.length <= this.tailBytes ? Buffer.concat([this.tail, chunk]) : null;
      this.tail = joined ?? Buffer.concat([this.tail, chunk]).subarray(-this.tailBytes);
      // subarray keeps the whole joined buffer alive: copy, so the tail holds tailBytes, not the last chunk.
      if (!joined) this.tail = Buffer.from(this.tail);
    }
    const room = this.capBytes - this.kept;
    if (room <= 0 || this.full) return;
    // Cut at a character boundary: a U+FFFD where a secret starts would hide it from masking. The rest of the
    // cap then stays unused: a later chunk must not be kept after a gap.
    const part = chunk.length <= room ? chunk : chunk.subarray(0, utf8Boundary(chunk, room));
    if (part.length < chunk.length) this.full = true;
    this.chunks.push(part);
    this.kept += part.length;
  }

  /** The bytes kept, as they came. */
  keptBytes(): Buffer {
    return Buffer.concat(this.chunks);
  }

  get bytes(): number {
    return this.total;
  }

  result(): CapturedStream {
    return {
      // A cut may split a multi-byte character; the decoder replaces the fragment with U+FFFD. PostgreSQL's
      // text refuses NUL: stored as U+FFFD too, or the attempt's record could never be written.
      text: Buffer.concat(this.chunks).toString('utf8').replaceAll('\u0000', '\uFFFD'),
      truncated: this.total > this.kept,
      bytes: this.total,
    };
  }

  /** The last `tailBytes` of the stream (`truncated`: the stream was longer). */
  tailResult(): CapturedStream {
    // Start at a character boundary (a cut inside one would show as U+FFFD and could hide a secret's end).
    let start = 0;
    if (this.total > this.tail.length) while (start < this.tail.length && (this.tail[start] & 0xc0) === 0x80) start++;
    return {
      text: this.tail.subarray(start).toString('utf8').replaceAll('\u0000', '\uFFFD'),
      truncated: this.total > this.tail.length,
      bytes: this.total,
    };
  }
}
