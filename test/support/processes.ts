import { execFileSync } from 'node:child_process';

/** Pids of live processes whose command line contains `marker` (pgrep exits 1 when none match). */
export function processesMatching(marker: string): string[] {
  try {
    return execFileSync('pgrep', ['-f', marker], { encoding: 'utf8' }).split('\n').filter(Boolean);
  } catch {
    return [];
  }
}
