/* The live output writer without a database: what it stores is the output as printed, capped, with every
 * secret masked however the prints and the flushes cut it, and a failed write loses and repeats nothing. */
import fc from 'fast-check';
import { LiveOutput, OutputCapture, maskTail, tailOf } from '@task-scheduler/activities';
import { maskSecrets } from '@task-scheduler/core';
import type { OutputChunkRow } from '@task-scheduler/db';

/** A store in memory that can be made to fail the next writes. */
class MemoryStore {
  rows: OutputChunkRow[] = [];
  failNext = 0;
  async append(rows: readonly OutputChunkRow[]): Promise<void> {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('connection terminated');
    }
    for (const r of rows) if (!this.rows.some((x) => x.seq === r.seq)) this.rows.push({ ...r });
  }
  text(stream: 'stdout' | 'stderr'): string {
    return [...this.rows]
      .sort((a, b) => a.seq - b.seq)
      .filter((r) => r.stream === stream)
      .map((r) => r.text)
      .join('');
  }
}

const ref = { runId: 'r', tenantId: 't', shardIndex: 0, attempt: 1 };
// Flushes are driven by hand through the private method: the timer is set far out.
const flush = (o: LiveOutput, final = false): Promise<void> => (o as unknown as { flush(f: boolean): Promise<void> }).flush(final);

/** Runs prints through a LiveOutput, flushing where told, and returns what the store holds. */
async function store(
  secrets: string[],
  prints: ['stdout' | 'stderr', string][],
  flushAfter: boolean[],
  failures: number,
): Promise<{ store: MemoryStore; printed: Record<'stdout' | 'stderr', string>; summary: Awaited<ReturnType<LiveOutput['close']>> }> {
  const mem = new MemoryStore();
  mem.failNext = failures;
  const out = new LiveOutput({ store: mem, ref, capBytes: 1 << 20, flushMs: 3_600_000 });
  out.setSecrets(secrets);
  const printed = { stdout: '', stderr: '' };
  for (const [i, [stream, text]] of prints.entries()) {
    printed[stream] += text;
    const bytes = Buffer.from(text, 'utf8');
    // Split inside multi-byte characters and secrets too.
    const at = Math.min(1 + (i % 3), bytes.length);
    out.push(stream, bytes.subarray(0, at));
    out.push(stream, bytes.subarray(at));
    if (flushAfter[i % flushAfter.length]) await flush(out);
  }
  return { store: mem, printed, summary: await out.close() };
}

const streams = ['stdout', 'stderr'] as const;
const printsOf = (unit: fc.Arbitrary<string>) =>
  fc.array(fc.tuple(fc.constantFrom<'stdout' | 'stderr'>(...streams), fc.string({ unit, maxLength: 10 })), { maxLength: 24 });

test('property: secrets that cannot overlap: the store holds exactly the masked output, in order, once', async () => {
  // Each secret has distinct letters of its own, so no two occurrences can overlap and masking has one answer.
  const secretsArb = fc
    .subarray(['abc', 'de', 'fghi', 'j'], { minLength: 1 })
    .chain((groups) => fc.tuple(...groups.map((g) => fc.shuffledSubarray([...g], { minLength: 1 }).map((l) => l.join('')))));
  await fc.assert(
    fc.asyncProperty(
      secretsArb,
      printsOf(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'x', '\n', 'é')),
      fc.array(fc.boolean(), { minLength: 1, maxLength: 24 }),
      fc.integer({ min: 0, max: 1 }),
      async (secretList, prints, flushAfter, failures) => {
        const secrets = [...secretList].sort((a, b) => b.length - a.length);
        const { store: mem, printed, summary } = await store(secrets, prints, flushAfter, failures);
        for (const s of streams) {
          expect(mem.text(s)).toBe(maskSecrets(printed[s], secrets));
          expect(summary[s]).toEqual({
            bytes: Buffer.byteLength(printed[s]),
            storedBytes: Buffer.byteLength(printed[s]),
            truncated: false,
          });
        }
        const seqs = mem.rows.map((r) => r.seq).sort((a, b) => a - b);
        expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
      },
    ),
    { numRuns: 200 },
  );
});

test('property: any secrets (overlapping, repeating): no secret is ever in what is stored, and nothing else changes', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.string({ unit: fc.constantFrom('a', 'b', 'c'), minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 3 }),
      printsOf(fc.constantFrom('a', 'b', 'c', 'x', '\n')),
      fc.array(fc.boolean(), { minLength: 1, maxLength: 24 }),
      async (secretList, prints, flushAfter) => {
        const secrets = [...new Set(secretList)].sort((a, b) => b.length - a.length);
        const { store: mem, printed } = await store(secrets, prints, flushAfter, 0);
        for (const s of streams) {
          const text = mem.text(s);
          for (const secret of secrets) expect(text).not.toContain(secret);
          // Only secret letters are replaced: the x's and newlines are all there, in order.
          expect(text.replace(/[^x\n]/g, '')).toBe(printed[s].replace(/[^x\n]/g, ''));
        }
      },
    ),
    { numRuns: 200 },
  );
});

test('the cap keeps the first bytes of each stream and flags the rest', async () => {
  const store = new MemoryStore();
  const out = new LiveOutput({ store, ref, capBytes: 10, flushMs: 3_600_000 });
  out.push('stdout', Buffer.from('0123456789abcdef'));
  out.push('stderr', Buffer.from('short'));
  const summary = await out.close();
  expect(store.text('stdout')).toBe('0123456789');
  expect(store.text('stderr')).toBe('short');
  expect(summary).toEqual({
    stdout: { bytes: 16, storedBytes: 10, truncated: true },
    stderr: { bytes: 5, storedBytes: 5, truncated: false },
  });
});

test('a cap that cuts through a secret: its start is masked too', async () => {
  const mem = new MemoryStore();
  const out = new LiveOutput({ store: mem, ref, capBytes: 12, flushMs: 3_600_000 });
  out.setSecrets(['SUPERSECRET']);
  out.push('stdout', Buffer.from('token=SUPERSECRET\n'));
  const summary = await out.close();
  expect(mem.text('stdout')).toBe('token=***');
  expect(summary.stdout.truncated).toBe(true);
});

test('NUL is stored as U+FFFD (PostgreSQL text refuses it)', async () => {
  const store = new MemoryStore();
  const out = new LiveOutput({ store, ref, capBytes: 100, flushMs: 3_600_000 });
  out.push('stdout', Buffer.from('a\0b'));
  await out.close();
  expect(store.text('stdout')).toBe('a\uFFFDb');
});

test('a store that always fails: close gives up after its tries and flags the stream it could not store', async () => {
  const store = new MemoryStore();
  store.failNext = 1000;
  const out = new LiveOutput({ store, ref, capBytes: 100, flushMs: 3_600_000 });
  out.push('stdout', Buffer.from('lost'));
  await expect(out.close()).resolves.toEqual({
    stdout: { bytes: 4, storedBytes: 4, truncated: true },
    stderr: { bytes: 0, storedBytes: 0, truncated: false },
  });
  expect(store.rows).toEqual([]);
}, 20_000);

test('a store that never answers: close ends by its deadline, the attempt is not held hostage', async () => {
  const hanging = { append: () => new Promise<void>(() => undefined) };
  const out = new LiveOutput({ store: hanging, ref, capBytes: 100, flushMs: 3_600_000 });
  out.push('stderr', Buffer.from('never stored'));
  const t0 = Date.now();
  const summary = await out.close(300);
  expect(Date.now() - t0).toBeLessThan(5_000); // generous: the deadline is 300 ms
  expect(summary.stderr.truncated).toBe(true);
});

test('a cap inside a multi-byte character cuts before it; a secret cut after it has its start masked', async () => {
  for (const [cap, stored] of [
    [6, 'key='], // 'key=' is 4 bytes and '€' 3: a cap of 6 falls inside '€', which is left out whole
    [9, 'key=***'], // 'key=€ur': the start of the secret, masked
  ] as const) {
    const mem = new MemoryStore();
    const out = new LiveOutput({ store: mem, ref, capBytes: cap, flushMs: 3_600_000 });
    out.setSecrets(['€uro-secret']);
    out.push('stdout', Buffer.from('key=€uro-secret'));
    await out.close();
    expect(mem.text('stdout')).toBe(stored);
  }
  const mem = new MemoryStore();
  const out = new LiveOutput({ store: mem, ref, capBytes: 6, flushMs: 3_600_000 });
  out.push('stdout', Buffer.from('key=€uro'));
  const summary = await out.close();
  expect(mem.text('stdout')).not.toContain('\uFFFD');
  expect(summary.stdout.truncated).toBe(true);
});

describe('history tails', () => {
  test('OutputCapture keeps the last bytes apart from the head', () => {
    const c = new OutputCapture(4, 6);
    for (const part of ['abc', 'defgh', 'ij']) c.push(Buffer.from(part));
    expect(c.result()).toEqual({ text: 'abcd', truncated: true, bytes: 10 });
    expect(c.tailResult()).toEqual({ text: 'efghij', truncated: true, bytes: 10 });
  });

  test('a tail cut inside a multi-byte character starts at the next character, so the secret end is found', () => {
    const secret = 'S€CRET-VALUE';
    const c = new OutputCapture(1024, 12); // the last 12 bytes begin inside '€'
    c.push(Buffer.from(`x ${secret} ok`));
    const tail = c.tailResult();
    expect(tail.text).not.toContain('\uFFFD');
    expect(maskTail(tail, [secret]).text).toBe('*** ok');
  });

  test('a tail that starts inside a secret has that piece masked', () => {
    const secret = 'SUPERSECRET';
    const c = new OutputCapture(1024, 9);
    c.push(Buffer.from(`token=${secret} done`));
    const tail = c.tailResult();
    expect(tail.text).toBe('CRET done');
    expect(maskTail(tail, [secret]).text).toBe('*** done');
  });

  test('tailOf cuts a head capture to its last bytes', () => {
    expect(tailOf({ text: 'abcdef', truncated: false, bytes: 6 }, 3)).toEqual({ text: 'def', truncated: true, bytes: 6 });
    expect(tailOf({ text: 'ab', truncated: false, bytes: 2 }, 3)).toEqual({ text: 'ab', truncated: false, bytes: 2 });
  });
});
