/* Alert messages: the webhook signature a receiver verifies (Stripe's scheme), and what Slack and email show. */
import fc from 'fast-check';
import { SIGNATURE_TOLERANCE_SECONDS, emailMessage, signatureOf, slackMessage, verifySignature, webhookBody } from '../../apps/api/src/alerts/alert-messages';
import type { AlertNotificationPayload } from '@task-scheduler/db';

const payload: AlertNotificationPayload = {
  event: 'firing',
  tenantId: '11111111-1111-4111-8111-111111111111',
  alert: { id: 'a1', state: 'firing', summary: 'Task "export" failed 3 times in a row', openedAt: '2026-12-01T10:00:00.000Z', resolvedAt: null, details: {} },
  rule: { id: 'r1', name: 'export-failing', kind: 'consecutive_failures' },
  subject: { type: 'task', id: 't1', name: 'export <prod> & co' },
  run: { id: 'run-1', status: 'failed', error: 'exit code 1', attempts: 3, workflowId: 'run-run-1', finishedAt: '2026-12-01T10:00:00.000Z' },
};
const links = { run: 'https://scheduler.example.com/v1/runs/run-1', temporal: 'https://temporal.example.com/wf/run-run-1', alert: null };

test('a signature verifies with its secret, and fails for another secret, another body, or a stale timestamp', () => {
  const now = 1_800_000_000;
  fc.assert(
    fc.property(fc.string({ minLength: 1 }), fc.string(), fc.string({ minLength: 1 }), (secret, body, other) => {
      const header = signatureOf(secret, now, body);
      expect(verifySignature(secret, header, body, now)).toBe(true);
      expect(verifySignature(secret, header, body, now + SIGNATURE_TOLERANCE_SECONDS)).toBe(true);
      if (other !== secret) expect(verifySignature(other, header, body, now)).toBe(false);
      expect(verifySignature(secret, header, `${body}x`, now)).toBe(false);
      expect(verifySignature(secret, header, body, now + SIGNATURE_TOLERANCE_SECONDS + 1)).toBe(false);
    }),
  );
});

test('a header with its timestamp changed (replayed later) or mangled does not verify', () => {
  const header = signatureOf('whsec_x', 1000, '{"a":1}');
  const v1 = header.split('v1=')[1];
  expect(verifySignature('whsec_x', `t=1001,v1=${v1}`, '{"a":1}', 1001)).toBe(false);
  expect(verifySignature('whsec_x', `t=1000`, '{"a":1}', 1000)).toBe(false);
  expect(verifySignature('whsec_x', `t=abc,v1=${v1}`, '{"a":1}', 1000)).toBe(false);
  expect(verifySignature('whsec_x', `t=1000,v1=${v1.slice(1)}`, '{"a":1}', 1000)).toBe(false);
  // As many characters as the hex digest but more bytes: false, not a throw from timingSafeEqual.
  expect(verifySignature('whsec_x', `t=1000,v1=${'é'.repeat(v1.length)}`, '{"a":1}', 1000)).toBe(false);
});

test('the webhook body carries the event type, id, payload and links', () => {
  const body = JSON.parse(webhookBody('n1', payload, links, new Date('2026-12-01T10:00:01Z')));
  expect(body).toMatchObject({ id: 'n1', type: 'alert.firing', createdAt: '2026-12-01T10:00:01.000Z', run: { id: 'run-1' }, links });
});

test('Slack blocks name tenant, task, run and error, escape mrkdwn, and link the run and the Temporal UI', () => {
  const msg = slackMessage(payload, links, 'Acme') as { text: string; blocks: any[] };
  expect(msg.text).toBe('[FIRING] Task "export" failed 3 times in a row');
  const fields = msg.blocks[1].fields.map((f: { text: string }) => f.text);
  expect(fields).toEqual(
    expect.arrayContaining(['*Tenant*\nAcme', '*Task*\nexport &lt;prod&gt; &amp; co', '*Run*\nrun-1 (failed, 3 attempts)', '*Error*\nexit code 1']),
  );
  expect(msg.blocks[2].elements.map((b: { url: string }) => b.url)).toEqual([links.run, links.temporal]);
});

test('email has the headline as subject, the run link in text and HTML, and escapes HTML', () => {
  const mail = emailMessage(payload, links, 'Acme');
  expect(mail.subject).toBe('[FIRING] Task "export" failed 3 times in a row');
  expect(mail.text).toContain(`Run: ${links.run}`);
  expect(mail.html).toContain(`<a href="${links.run}">Run</a>`);
  expect(mail.html).toContain('export &lt;prod&gt; &amp; co');
  expect(mail.html).not.toContain('<prod>');
});
