import type { CapturedStream } from '@task-scheduler/contracts';

/** Keeps the first `capBytes` bytes of a stream and counts the rest. */
export class OutputCapture {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  private total = 0;

  constructor(private readonly capBytes: number) {}

  push(chunk: Buffer): void {
    this.total += chunk.length;
    const room = this.capBytes - this.kept;
    if (room <= 0) return;
    const part = chunk.length <= room ? chunk : chunk.subarray(0, room);
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
      // A cut may split a multi-byte character; the decoder replaces the fragment with U+FFFD.
      text: Buffer.concat(this.chunks).toString('utf8'),
      truncated: this.total > this.kept,
      bytes: this.total,
    };
  }
}
