import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';

/** What the switch kills when it fires: single processes and whole process groups, by id. */
export interface DeadManTargets {
  pids?: readonly number[];
  /**
   * Processes killed only while still the child of `parent` (`/proc/<pid>/stat`): a child reaped while the
   * worker is stopped frees its pid, which another process (another tenant's sandbox) may get before the window ends.
   */
  children?: readonly { pid: number; parent: number }[];
  groups?: readonly number[];
}

export interface DeadManSwitchOptions {
  /** Without a byte for this long, or at end of file (the worker died), the targets are SIGKILLed. */
  windowMs: number;
  /** How often the worker writes its byte; well under `windowMs`. */
  feedMs: number;
  /** Shell with `read -t` (bash); it runs outside any sandbox, as the worker's user. */
  shell?: string;
  /** The watcher ended without being disarmed (killed by someone): the caller kills the targets itself. */
  onLost?: () => void;
}

/*
 * A watcher that sleeps in read(2) with a timeout: it needs nothing of the worker's
 * process to be scheduled, so it still fires while the worker is stopped (SIGSTOP, a
 * frozen cgroup, a debugger) or wedged in a synchronous loop. `x` disarms it; anything
 * else is a feed. Its own process group, so killing the task's group never takes it.
 */
const WATCHER = `w=$1; shift
fire() {
  for t in "$@"; do
    case $t in
      g:*) kill -KILL -- "-\${t#g:}" ;;
      p:*) kill -KILL "\${t#p:}" ;;
      c:*) c=\${t#c:}; pid=\${c%:*}; stat=$(cat "/proc/$pid/stat") || continue; set -- \${stat##*) }
           [ "$2" = "\${c#*:}" ] && kill -KILL "$pid" ;;
    esac
  done 2>/dev/null
  exit 0
}
trap 'fire "$@"' TERM HUP INT
while IFS= read -r -n 1 -t "$w" c; do
  [ "$c" = x ] && exit 0
done
fire "$@"`;

/**
 * A dead man's switch for one attempt's processes: the worker feeds it a byte
 * every `feedMs`; a separate process kills the targets when no byte came for
 * `windowMs` or the pipe closed. Isolated, `--die-with-parent` covers a worker
 * that dies, but not one that is stopped: its task would go on running while
 * Temporal, seeing no heartbeat, starts the retry elsewhere.
 */
export class DeadManSwitch {
  private readonly feeder: NodeJS.Timeout;
  private disarmed = false;

  private constructor(
    private readonly watcher: ChildProcess,
    feedMs: number,
    onLost?: () => void,
  ) {
    watcher.stdin?.on('error', () => undefined); // EPIPE once the watcher is gone: nothing left to feed
    // Fail closed: a watcher gone while armed (fired, or killed by someone) leaves the attempt unguarded.
    watcher.once('exit', () => {
      if (!this.disarmed) onLost?.();
    });
    this.feeder = setInterval(() => this.write('.'), feedMs);
    this.feeder.unref();
  }

  /** Starts the watcher; resolves once it runs, rejects when it cannot be started. */
  static async arm(targets: DeadManTargets, o: DeadManSwitchOptions): Promise<DeadManSwitch> {
    const args = [
      ...(targets.pids ?? []).map((p) => `p:${p}`),
      ...(targets.children ?? []).map((c) => `c:${c.pid}:${c.parent}`),
      ...(targets.groups ?? []).map((g) => `g:${g}`),
    ];
    const watcher = spawn(o.shell ?? '/bin/bash', ['-c', WATCHER, 'dead-man-switch', (o.windowMs / 1000).toFixed(3), ...args], {
      cwd: '/',
      env: {},
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    await new Promise<void>((resolve, reject) => {
      watcher.once('spawn', resolve);
      watcher.once('error', reject);
    });
    watcher.unref();
    return new DeadManSwitch(watcher, o.feedMs, o.onLost);
  }

  /** The watcher's pid (tests). */
  get pid(): number | undefined {
    return this.watcher.pid;
  }

  /** Ends the watcher without firing: the attempt's processes ended the normal way. */
  disarm(): void {
    if (this.disarmed) return;
    this.disarmed = true;
    clearInterval(this.feeder);
    this.write('x');
    this.watcher.stdin?.end();
  }

  private write(byte: string): void {
    const stdin = this.watcher.stdin;
    if (stdin && !stdin.destroyed && stdin.writable) stdin.write(byte);
  }
}

/**
 * The switch's window for an activity whose heartbeat timeout is `heartbeatTimeoutMs`
 * and which heartbeats every `heartbeatMs`. Temporal times the attempt out at its last
 * recorded heartbeat plus the timeout; that heartbeat may be up to about two heartbeat
 * intervals older than the switch's last byte (the SDK throttles at one interval). So the
 * retry cannot start before `heartbeatTimeoutMs − 2·heartbeatMs` after the worker stalled,
 * and the window is at most that minus 1 s, and at most half the timeout, but at least 1 s.
 */
export function deadManWindowMs(heartbeatTimeoutMs: number, heartbeatMs: number): number {
  return Math.max(1000, Math.min(heartbeatTimeoutMs / 2, heartbeatTimeoutMs - 2 * heartbeatMs - 1000));
}
