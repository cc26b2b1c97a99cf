export { IsolationUnavailableError, prepareIsolation } from './prepare';
export type { PrepareIsolationOptions } from './prepare';
export type { Isolation, DefaultShellLimits } from './isolation';
export { egressRuleset, nonPublicIpv4Blocks, hostIpv4Addresses } from './egress';
export { sandboxArgs } from './bwrap-args';
export { UidLeases, processesOfUid } from './uid-leases';
