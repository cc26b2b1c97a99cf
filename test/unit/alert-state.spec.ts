import { decideAlert } from '../../activities/src/alerts/alert-state';
import type { AlertState } from '../../activities/src/alerts/alert-state';

const calm: AlertState = { failing: false, withinWindow: false, lastAlertRunId: null, lastAlertSuppressed: 0, suppressed: 0 };

test('a failure alerts, with the failures suppressed since the last alert; within the window it is suppressed', () => {
  expect(decideAlert(calm, 'r1', true, {})).toEqual({ kind: 'failure', suppressed: 0 });
  expect(decideAlert({ ...calm, failing: true, withinWindow: true, suppressed: 2 }, 'r2', true, {})).toEqual({ kind: 'suppress' });
  expect(decideAlert({ ...calm, failing: true, withinWindow: false, suppressed: 2 }, 'r2', true, {})).toEqual({
    kind: 'failure',
    suppressed: 2,
  });
});

test('the first success after failing recovers, sending only when asked; a success while calm does nothing', () => {
  const failing = { ...calm, failing: true, suppressed: 3 };
  expect(decideAlert(failing, 'r3', false, { onRecovery: true })).toEqual({ kind: 'recover', send: true, suppressed: 3 });
  expect(decideAlert(failing, 'r3', false, {})).toEqual({ kind: 'recover', send: false, suppressed: 3 });
  expect(decideAlert(calm, 'r3', false, { onRecovery: true })).toEqual({ kind: 'none' });
});

test('a run that alerted already gets the same alert again (a retried call)', () => {
  const alerted = { ...calm, failing: true, withinWindow: true, lastAlertRunId: 'r1', lastAlertSuppressed: 4 };
  expect(decideAlert(alerted, 'r1', true, {})).toEqual({ kind: 'again', alert: 'failure', suppressed: 4 });
  expect(decideAlert({ ...alerted, failing: false }, 'r1', false, { onRecovery: true })).toEqual({
    kind: 'again',
    alert: 'recovery',
    suppressed: 4,
  });
});
