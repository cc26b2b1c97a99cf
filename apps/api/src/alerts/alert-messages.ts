/* What an alert notification looks like on each channel, and how a webhook receiver verifies it. Pure: the
 * dispatcher sends what these functions build (test/unit/alert-messages.spec.ts). */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { AlertNotificationPayload } from '@task-scheduler/db';

/** The header carrying the signature: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, as Stripe does. */
export const SIGNATURE_HEADER = 'X-TaskScheduler-Signature';
/** The notification's id: the same on every retry of one notification, so a receiver can drop repeats. */
export const EVENT_ID_HEADER = 'X-TaskScheduler-Event-Id';
/** A receiver should refuse a signature older than this (replays). */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

export function signatureOf(secret: string, timestamp: number, body: string): string {
  return `t=${timestamp},v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** What a receiver does (docs/alerts.md shows it in a few lines): true when the header signs the body within the tolerance. */
export function verifySignature(secret: string, header: string, body: string, nowSeconds = Math.floor(Date.now() / 1000)): boolean {
  const parts = new Map(header.split(',').map((p) => p.split('=', 2) as [string, string]));
  const t = Number(parts.get('t'));
  const given = parts.get('v1');
  if (!Number.isInteger(t) || !given || Math.abs(nowSeconds - t) > SIGNATURE_TOLERANCE_SECONDS) return false;
  const expected = Buffer.from(signatureOf(secret, t, body).split('v1=')[1]);
  const actual = Buffer.from(given);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/**
 * A Slack (or Mattermost, Teams…) incoming-webhook URL is a credential in its path: shown as its origin and
 * first path segment, the rest masked (`https://hooks.slack.com/services/***`).
 */
export function maskedSlackUrl(url: string): string {
  try {
    const u = new URL(url);
    const first = u.pathname.split('/').filter(Boolean)[0];
    return `${u.origin}/${first ? `${first}/***` : '***'}`;
  } catch {
    return '***';
  }
}

export interface AlertLinks {
  /** The run in our API. */
  run: string | null;
  /** The run's workflow in the Temporal Web UI. */
  temporal: string | null;
  /** The alert in our API. */
  alert: string | null;
}

/** The JSON a webhook channel receives. */
export function webhookBody(id: string, p: AlertNotificationPayload, links: AlertLinks, sentAt: Date): string {
  return JSON.stringify({ id, type: `alert.${p.event}`, createdAt: sentAt.toISOString(), ...p, links });
}

const EVENT_WORDS: Record<AlertNotificationPayload['event'], string> = {
  firing: 'FIRING',
  renotify: 'STILL FIRING',
  escalation: 'ESCALATED',
  resolved: 'RESOLVED',
  test: 'TEST',
};

export function headlineOf(p: AlertNotificationPayload): string {
  if (p.event === 'test') return 'Test notification from Task Scheduler';
  return `[${EVENT_WORDS[p.event]}] ${p.alert?.summary ?? p.rule?.name ?? 'alert'}`;
}

/** Facts shown on Slack and in email, in this order. */
function factsOf(p: AlertNotificationPayload, tenantName: string): [string, string][] {
  const facts: [string, string][] = [['Tenant', tenantName]];
  if (p.rule) facts.push(['Rule', `${p.rule.name} (${p.rule.kind})`]);
  if (p.subject) facts.push([p.subject.type === 'task' ? 'Task' : 'Schedule', p.subject.name]);
  if (p.run) {
    facts.push(['Run', `${p.run.id} (${p.run.status}, ${p.run.attempts} attempt${p.run.attempts === 1 ? '' : 's'})`]);
    if (p.run.error) facts.push(['Error', p.run.error.slice(0, 500)]);
  }
  if (p.alert) facts.push(['Opened', p.alert.openedAt]);
  return facts;
}

/** Slack's `mrkdwn` needs &, < and > escaped. */
function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** An incoming-webhook message: a header, the facts as fields, the links as buttons; `text` is the fallback. */
export function slackMessage(p: AlertNotificationPayload, links: AlertLinks, tenantName: string): Record<string, unknown> {
  const headline = headlineOf(p);
  const buttons = [
    links.run && { type: 'button', text: { type: 'plain_text', text: 'Open run' }, url: links.run },
    links.temporal && { type: 'button', text: { type: 'plain_text', text: 'Temporal UI' }, url: links.temporal },
  ].filter(Boolean);
  return {
    text: headline,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: headline.slice(0, 150) } },
      {
        type: 'section',
        fields: factsOf(p, tenantName).map(([k, v]) => ({ type: 'mrkdwn', text: `*${k}*\n${slackEscape(v)}` })),
      },
      ...(buttons.length ? [{ type: 'actions', elements: buttons }] : []),
    ],
  };
}

function htmlEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export function emailMessage(p: AlertNotificationPayload, links: AlertLinks, tenantName: string): { subject: string; text: string; html: string } {
  const facts = factsOf(p, tenantName);
  const linkLines: [string, string][] = [
    ['Run', links.run ?? ''],
    ['Temporal UI', links.temporal ?? ''],
    ['Alert', links.alert ?? ''],
  ].filter(([, url]) => url) as [string, string][];
  const text = [...facts.map(([k, v]) => `${k}: ${v}`), '', ...linkLines.map(([k, url]) => `${k}: ${url}`)].join('\n');
  const html =
    `<h2>${htmlEscape(headlineOf(p))}</h2><table>` +
    facts.map(([k, v]) => `<tr><th align="left">${htmlEscape(k)}</th><td>${htmlEscape(v)}</td></tr>`).join('') +
    `</table><p>` +
    linkLines.map(([k, url]) => `<a href="${htmlEscape(url)}">${htmlEscape(k)}</a>`).join(' · ') +
    `</p>`;
  return { subject: headlineOf(p).slice(0, 200), text, html };
}
