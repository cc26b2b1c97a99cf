import type { RunOutputs } from '@task-scheduler/contracts';
import { PARAMETER_NAME_PATTERN, PIPELINE_LIMITS } from '@task-scheduler/contracts';
import { maskSecrets } from '@task-scheduler/core';

/** The `$TASK_OUTPUTS` file cannot be taken as outputs; the message is the attempt's error. */
export class TaskOutputsError extends Error {
  constructor(reason: string) {
    super(`outputs: ${reason}`);
    this.name = 'TaskOutputsError';
  }
}

/** Secrets shorter than this are not masked in outputs: `***` would replace every `1` or `ok` a task reports. */
export const MIN_MASKED_SECRET_LENGTH = 4;

const bytes = (n: number): string => n.toLocaleString('en-US');
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Why a string cannot be stored as an output, or null. PostgreSQL's jsonb
 * refuses NUL (`\u0000`) and lone surrogates; an output that could never be
 * recorded would hold the run's finalization in retries for hours.
 */
function unstorable(s: string): string | null {
  if (s.includes('\u0000')) return 'a NUL character (\\u0000)';
  if (LONE_SURROGATE.test(s)) return 'a lone UTF-16 surrogate';
  return null;
}

/** Every string of a JSON value (object keys included), depth first. */
function* stringsOf(value: unknown): Generator<string> {
  if (typeof value === 'string') yield value;
  else if (Array.isArray(value)) for (const v of value) yield* stringsOf(v);
  else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      yield k;
      yield* stringsOf(v);
    }
  }
}

/** Bytes of outputs as they are stored and carried in the workflow history (UTF-8 JSON). */
export function outputsJsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value), 'utf8');
}

function parseLines(text: string): RunOutputs {
  const out: RunOutputs = {};
  const lines = text.split('\n');
  // A final newline ends the last line; it does not start an empty one.
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((line, i) => {
    if (line.trim() === '' || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    const name = eq < 0 ? '' : line.slice(0, eq);
    if (!PARAMETER_NAME_PATTERN.test(name)) {
      throw new TaskOutputsError(
        `line ${i + 1} is not name=value (a name is a letter or _ and up to 62 letters, digits or _; lines starting with # are comments)`,
      );
    }
    out[name] = line.slice(eq + 1);
  });
  return out;
}

/**
 * Reads what a task wrote to `$TASK_OUTPUTS`: one JSON object (the first
 * character that is not white space is `{`), or else `name=value` lines
 * (the value is the rest of the line, verbatim; blank lines and lines
 * starting with `#` are skipped; a repeated name takes its last value).
 * An empty file (or white space only) is no outputs: null. Throws
 * {@link TaskOutputsError} for a file over `capBytes`, text that is not
 * UTF-8, a malformed line, invalid JSON, outputs over `capBytes` as JSON, or
 * a string PostgreSQL cannot store.
 */
export function parseTaskOutputs(file: Buffer, capBytes: number = PIPELINE_LIMITS.maxOutputBytes): RunOutputs | null {
  if (file.length > capBytes)
    throw new TaskOutputsError(`$TASK_OUTPUTS is ${bytes(file.length)} bytes; at most ${bytes(capBytes)} are taken`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(file);
  } catch {
    throw new TaskOutputsError('$TASK_OUTPUTS is not UTF-8 text');
  }
  const start = text.trimStart();
  if (start === '') return null;
  let outputs: RunOutputs;
  if (start.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      // V8's message quotes the text, which may hold a secret: say where the format is described instead.
      throw new TaskOutputsError('$TASK_OUTPUTS starts with { but is not valid JSON (write one JSON object, or name=value lines)');
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new TaskOutputsError('$TASK_OUTPUTS starts with { but is not one JSON object');
    }
    outputs = parsed as RunOutputs;
  } else {
    outputs = parseLines(text);
  }
  for (const s of stringsOf(outputs)) {
    const why = unstorable(s);
    if (why) throw new TaskOutputsError(`$TASK_OUTPUTS holds ${why}, which outputs cannot store`);
  }
  // Escaping (control characters in lines, exponents such as 1e9 in JSON) can make the stored form longer than the file.
  const stored = outputsJsonBytes(outputs);
  if (stored > capBytes) throw new TaskOutputsError(`the outputs are ${bytes(stored)} bytes as JSON; at most ${bytes(capBytes)} are taken`);
  return outputs;
}

/**
 * An HTTP response body as an output: its JSON value when the bytes are UTF-8
 * JSON (whatever the content type says) that PostgreSQL can store and that
 * is at most `capBytes` as stored, else null. Never throws: an HTTP step's
 * outputs never fail its attempt.
 */
export function jsonBodyOutput(body: Buffer, capBytes: number = PIPELINE_LIMITS.maxOutputBytes): unknown {
  if (body.length === 0 || body.length > capBytes) return null;
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    return null;
  }
  for (const s of stringsOf(value)) if (unstorable(s)) return null;
  return outputsJsonBytes(value) > capBytes ? null : value;
}

/**
 * Replaces every occurrence of a secret value (of {@link MIN_MASKED_SECRET_LENGTH}
 * characters or more) in outputs by `***`: in strings at any depth, object keys
 * included; a number or boolean whose text contains one becomes `"***"`.
 */
export function maskOutputs<T>(value: T, secrets: readonly string[]): T {
  const masked = secrets.filter((s) => s.length >= MIN_MASKED_SECRET_LENGTH).sort((a, b) => b.length - a.length);
  if (masked.length === 0) return value;
  const maskText = (s: string): string => maskSecrets(s, masked);
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return maskText(v);
    if (typeof v === 'number' || typeof v === 'boolean') return maskText(String(v)) === String(v) ? v : '***';
    if (Array.isArray(v)) return v.map(walk);
    // fromEntries defines keys as own properties: a key `__proto__` stays a key.
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [maskText(k), walk(x)]));
    return v;
  };
  return walk(value) as T;
}
