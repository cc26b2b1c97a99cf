/* A test host of a suite's own: a network namespace joined to this host by a veth pair on a /30 of
 * 10.<block>.<n>.0, the only place besides loopback that tests may send traffic to. Needs root and iproute2. */
import { execFileSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';

export interface TestNetns {
  /** The namespace's name, for `ip netns exec`. */
  name: string;
  /** This host's end of the veth pair. */
  hostSide: string;
  /** The namespace's end. */
  peerSide: string;
  /** Deletes the pair and the namespace; safe to call when creation failed half-way. */
  remove(): void;
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe' });
}

/** Creates the namespace, `prefix` naming it (≤ 3 characters: interface names have at most 15). */
export function createTestNetns(prefix: string, block: number): TestNetns {
  const tag = randomBytes(3).toString('hex');
  const name = `tsk-${prefix}-${tag}`;
  const vethHost = `ts${prefix}${tag}h`;
  const vethPeer = `ts${prefix}${tag}p`;
  const subnet = randomInt(1, 250);
  const hostSide = `10.${block}.${subnet}.1`;
  const peerSide = `10.${block}.${subnet}.2`;
  const remove = (): void => {
    for (const args of [
      ['link', 'del', vethHost],
      ['netns', 'del', name],
    ]) {
      try {
        ip(...args);
      } catch {
        // not created, or gone with the namespace
      }
    }
  };
  try {
    ip('netns', 'add', name);
    ip('link', 'add', vethHost, 'type', 'veth', 'peer', 'name', vethPeer);
    ip('link', 'set', vethPeer, 'netns', name);
    ip('addr', 'add', `${hostSide}/30`, 'dev', vethHost);
    ip('link', 'set', vethHost, 'up');
    ip('netns', 'exec', name, 'ip', 'addr', 'add', `${peerSide}/30`, 'dev', vethPeer);
    ip('netns', 'exec', name, 'ip', 'link', 'set', vethPeer, 'up');
    ip('netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up');
  } catch (err) {
    remove();
    throw err;
  }
  return { name, hostSide, peerSide, remove };
}
