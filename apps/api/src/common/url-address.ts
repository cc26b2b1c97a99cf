import { isIP } from 'node:net';
import { AddressGuard } from '@task-scheduler/activities';
import { ApiError, ErrorCode } from './api-error';

/**
 * Refuses, when a URL is stored, what the worker's address guard would refuse when it connects: a host that
 * is an IP literal outside the public unicast space (private, loopback, link-local, metadata…) and outside
 * HTTP_ALLOW_CIDRS. HTTP tasks, alert webhooks and alert channels are checked alike. A host name is judged
 * when connecting (it may resolve elsewhere by then); a URL with `{placeholders}` in its host is judged per run.
 */
export function checkUrlAddress(field: string, url: string, allowCidrs: readonly string[]): void {
  let host: string;
  try {
    host = new URL(url).hostname; // normalises 0x7f.1, 2130706433 and the like to dotted IPv4
  } catch {
    return; // not a URL yet (placeholders): the URL pattern check and the run's guard judge it
  }
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (isIP(host) === 0) return;
  const verdict = new AddressGuard(allowCidrs).check(host);
  if (!verdict.allowed) {
    const message = `${verdict.reason}: only public addresses, or those in the platform's HTTP_ALLOW_CIDRS, may be reached`;
    throw new ApiError(ErrorCode.URL_ADDRESS_REFUSED, `${field}: ${message}`, [{ field, message }]);
  }
}
