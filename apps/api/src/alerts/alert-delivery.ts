import { Inject, Injectable } from '@nestjs/common';
import type { OnApplicationShutdown } from '@nestjs/common';
import { HttpExecutor } from '@task-scheduler/activities';
import type { AppConfig } from '@task-scheduler/config';
import { openSecrets, parseSecretsKey, temporalUiUrl } from '@task-scheduler/core';
import type { AlertChannelType, AlertNotificationPayload } from '@task-scheduler/db';
import { createTransport } from 'nodemailer';
import type { Transporter } from 'nodemailer';
import { APP_CONFIG } from '../infra/tokens';
import { EVENT_ID_HEADER, SIGNATURE_HEADER, emailMessage, maskedSlackUrl, signatureOf, slackMessage, webhookBody } from './alert-messages';
import type { AlertLinks } from './alert-messages';

/** A channel as the dispatcher needs it: its sealed secret (webhook signing secret, Slack URL) opened at send time. */
export interface DeliveryChannel {
  id: string;
  tenantId: string;
  tenantName: string;
  type: AlertChannelType;
  url: string | null;
  emailTo: string[] | null;
  secretSealed: string | null;
}

/**
 * - `sent`: the receiver took it (2xx; the SMTP server accepted it).
 * - `retry`: worth another try (network error, timeout, 408/429/5xx); `retryAfterMs` when the receiver said when.
 * - `failed`: will not work as it is (another 4xx, an address the guard refuses, a broken channel).
 */
export interface DeliveryResult {
  outcome: 'sent' | 'retry' | 'failed';
  status: number | null;
  error: string | null;
  retryAfterMs: number | null;
}

const TIMEOUT_MS = 10_000;

/** The names the sealed blob keeps a channel's secret under (the blob format is the tasks' one, libs/core secrets). */
export const SEALED_KEYS = { webhook: 'signingSecret', slack: 'url' } as const;

/**
 * Sends one notification to one channel. Webhooks and Slack go out through the HTTP tasks' executor, so the
 * same address guard (public addresses, or HTTP_ALLOW_CIDRS) holds for every hop, redirects included; email
 * through nodemailer over SMTP_URL.
 */
@Injectable()
export class AlertDelivery implements OnApplicationShutdown {
  private readonly http: HttpExecutor;
  private readonly secretsKey: Buffer | null;
  private mailer: Transporter | null = null;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {
    this.http = new HttpExecutor({ responseCapBytes: 4096, allowCidrs: config.HTTP_ALLOW_CIDRS, userAgent: 'task-scheduler-alerts/1' });
    this.secretsKey = config.SECRETS_KEY ? parseSecretsKey(config.SECRETS_KEY) : null;
  }

  onApplicationShutdown(): void {
    this.mailer?.close();
  }

  linksOf(p: AlertNotificationPayload): AlertLinks {
    const api = (this.config.PUBLIC_API_URL ?? `http://127.0.0.1:${this.config.PORT}`).replace(/\/$/, '');
    return {
      run: p.run ? `${api}/v1/runs/${p.run.id}` : null,
      temporal: p.run ? temporalUiUrl(this.config.TEMPORAL_UI_URL, this.config.TEMPORAL_NAMESPACE, p.run.workflowId) : null,
      alert: p.alert ? `${api}/v1/alerts/${p.alert.id}` : null,
    };
  }

  private secretOf(ch: DeliveryChannel, key: string): string {
    if (!ch.secretSealed || !this.secretsKey) throw new Error('the channel secret cannot be opened: SECRETS_KEY is not set on this API');
    const value = openSecrets(ch.secretSealed, this.secretsKey, ch.tenantId).env?.[key];
    if (!value) throw new Error('the channel has no stored secret');
    return value;
  }

  async deliver(notificationId: string, ch: DeliveryChannel, p: AlertNotificationPayload, now = new Date()): Promise<DeliveryResult> {
    const result = await this.send(notificationId, ch, p, now);
    // A Slack URL is a credential: an error naming it (an executor's message, a receiver's echo) is stored and logged.
    if (ch.type === 'slack' && result.error && ch.secretSealed && this.secretsKey) {
      try {
        const url = this.secretOf(ch, SEALED_KEYS.slack);
        const path = new URL(url).pathname;
        result.error = result.error.split(url).join(maskedSlackUrl(url));
        if (path.length > 1) result.error = result.error.split(path).join('/***');
      } catch {
        // the secret cannot be opened: the error says so and names no URL
      }
    }
    return result;
  }

  private async send(notificationId: string, ch: DeliveryChannel, p: AlertNotificationPayload, now: Date): Promise<DeliveryResult> {
    try {
      const links = this.linksOf(p);
      if (ch.type === 'email') return await this.sendEmail(ch, p, links);
      const headers: Record<string, string> = { 'content-type': 'application/json', [EVENT_ID_HEADER.toLowerCase()]: notificationId };
      let url: string;
      let body: string;
      if (ch.type === 'webhook') {
        url = ch.url as string;
        body = webhookBody(notificationId, p, links, now);
        headers[SIGNATURE_HEADER.toLowerCase()] = signatureOf(this.secretOf(ch, SEALED_KEYS.webhook), Math.floor(now.getTime() / 1000), body);
      } else {
        url = this.secretOf(ch, SEALED_KEYS.slack);
        body = JSON.stringify(slackMessage(p, links, ch.tenantName));
      }
      const res = await this.http.run({ method: 'POST', url, headers, body, timeoutMs: TIMEOUT_MS });
      if (res.outcome === 'response' && res.status !== null) {
        if (res.status >= 200 && res.status < 300) return { outcome: 'sent', status: res.status, error: null, retryAfterMs: null };
        const retry = res.status === 408 || res.status === 429 || res.status >= 500;
        const text = res.body.text.slice(0, 200);
        return {
          outcome: retry ? 'retry' : 'failed',
          status: res.status,
          error: `the receiver answered ${res.status}${text ? `: ${text}` : ''}`,
          retryAfterMs: res.retryAfterMs,
        };
      }
      const permanent = res.outcome === 'refused' || res.outcome === 'invalid';
      return { outcome: permanent ? 'failed' : 'retry', status: null, error: res.error ?? res.outcome, retryAfterMs: null };
    } catch (err) {
      return { outcome: 'failed', status: null, error: (err as Error).message, retryAfterMs: null };
    }
  }

  private async sendEmail(ch: DeliveryChannel, p: AlertNotificationPayload, links: AlertLinks): Promise<DeliveryResult> {
    if (!this.config.SMTP_URL) return { outcome: 'retry', status: null, error: 'SMTP_URL is not set on this API', retryAfterMs: null };
    this.mailer ??= createTransport({ url: this.config.SMTP_URL, connectionTimeout: TIMEOUT_MS, greetingTimeout: TIMEOUT_MS, socketTimeout: TIMEOUT_MS });
    const msg = emailMessage(p, links, ch.tenantName);
    try {
      await this.mailer.sendMail({ from: this.config.SMTP_FROM, to: ch.emailTo ?? [], ...msg });
      return { outcome: 'sent', status: null, error: null, retryAfterMs: null };
    } catch (err) {
      const e = err as { responseCode?: number; message: string };
      // 5xx SMTP replies are permanent (a refused recipient); the rest (connection, 4xx) may pass later.
      const permanent = typeof e.responseCode === 'number' && e.responseCode >= 500;
      return { outcome: permanent ? 'failed' : 'retry', status: e.responseCode ?? null, error: e.message, retryAfterMs: null };
    }
  }
}
