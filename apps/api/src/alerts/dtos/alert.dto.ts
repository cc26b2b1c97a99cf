import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import type { AlertChannelEntity, AlertEntity, AlertRuleEntity } from '@task-scheduler/db';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsBoolean,
  IsEmail,
  IsIn,
  IsInt,
  IsString,
  IsUUID,
  Matches,
  Max,
  MaxLength,
  Min,
} from 'class-validator';
import { ListQueryDto } from '../../common/list-query.dto';
import { PageOf, isoOrNull } from '../../common/page.dto';
import { Nullable, Optional } from '../../common/validation';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const NAME_MESSAGE = 'name must be 1-128 letters, digits, dot, underscore or dash';
export const CHANNEL_TYPES = ['webhook', 'slack', 'email'] as const;
export const RULE_KINDS = ['consecutive_failures', 'missed_fire', 'queued_too_long', 'running_too_long'] as const;
/** 30 days, the longest threshold, interval or delay a rule takes. */
const MAX_SECONDS = 2_592_000;
/** Re-notification at most once a minute: a rule cannot turn a channel into a flood. */
const MIN_RENOTIFY_SECONDS = 60;

export class CreateAlertChannelDto {
  @ApiProperty({ example: 'on-call', pattern: NAME.source })
  @IsString()
  @Matches(NAME, { message: NAME_MESSAGE })
  name!: string;

  @ApiProperty({
    enum: CHANNEL_TYPES,
    description:
      'webhook: a signed JSON POST (secret returned once, at create). slack: a Slack incoming webhook (its URL is stored ' +
      'encrypted and shown masked). email: sent over the platform SMTP server to `to`.',
  })
  @IsIn(CHANNEL_TYPES as unknown as string[], { message: `type must be one of ${CHANNEL_TYPES.join(', ')}` })
  type!: (typeof CHANNEL_TYPES)[number];

  @ApiPropertyOptional({
    example: 'https://hooks.example.com/task-scheduler',
    maxLength: 2048,
    description: 'webhook and slack: the http(s) URL to POST to. Private IP literals are refused (URL_ADDRESS_REFUSED).',
  })
  @Optional()
  @IsString()
  @MaxLength(2048)
  @Matches(/^https?:\/\/[^\s]+$/i, { message: 'url must be an http:// or https:// URL' })
  url?: string;

  @ApiPropertyOptional({ type: [String], example: ['oncall@example.com'], description: 'email: the recipients (1-20).' })
  @Optional()
  @ArrayMinSize(1)
  @ArrayMaxSize(20)
  @IsEmail({}, { each: true, message: 'to must hold email addresses' })
  to?: string[];
}

export class AlertChannelResponse {
  @ApiProperty() id!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ enum: CHANNEL_TYPES }) type!: string;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'webhook: the URL; slack: the URL with its token masked; email: null.' })
  url!: string | null;
  @ApiPropertyOptional({ nullable: true, type: [String] }) to!: string[] | null;
  @ApiProperty() createdAt!: string;

  static from(c: AlertChannelEntity): AlertChannelResponse {
    return { id: c.id, name: c.name, type: c.type, url: c.url, to: c.emailTo, createdAt: c.createdAt.toISOString() };
  }
}

export class CreatedAlertChannelResponse extends AlertChannelResponse {
  @ApiPropertyOptional({
    description:
      'webhook only, and only in this answer: the secret that signs every request (header X-TaskScheduler-Signature). ' +
      'It is stored encrypted and never shown again.',
    example: 'whsec_3q2-7wEAAAAAAAAAAAAAAAAAAAAAAAAA',
  })
  secret?: string;
}

export const AlertChannelPage = PageOf(AlertChannelResponse);

export class TestSendResponse {
  @ApiProperty({ description: 'Whether the channel took the test notification.' }) delivered!: boolean;
  @ApiPropertyOptional({ nullable: true, type: Number, description: 'The HTTP status (webhook, Slack) or SMTP reply code.' })
  status!: number | null;
  @ApiPropertyOptional({ nullable: true, type: String }) error!: string | null;
  @ApiProperty({ description: 'The id the receiver saw (X-TaskScheduler-Event-Id).' }) notificationId!: string;
}

export class CreateAlertRuleDto {
  @ApiProperty({ example: 'nightly-export-failing', pattern: NAME.source })
  @IsString()
  @Matches(NAME, { message: NAME_MESSAGE })
  name!: string;

  @ApiProperty({
    enum: RULE_KINDS,
    description:
      'consecutive_failures: `failures` failed runs of a task in a row open the alert, `recoveries` successes in a row ' +
      'resolve it. missed_fire: `failures` fires of a schedule in a row missed or skipped (not paused) open it, ' +
      '`recoveries` fires that ran resolve it. queued_too_long / running_too_long: a run of the task waiting to start / ' +
      'running for longer than `thresholdSeconds` opens it; it resolves when no run is.',
  })
  @IsIn(RULE_KINDS as unknown as string[], { message: `kind must be one of ${RULE_KINDS.join(', ')}` })
  kind!: (typeof RULE_KINDS)[number];

  @ApiPropertyOptional({ format: 'uuid', description: 'Only this task (all kinds but missed_fire); omitted: every task of the tenant.' })
  @Optional()
  @IsUUID('all', { message: 'taskId must be a UUID' })
  taskId?: string;

  @ApiPropertyOptional({ format: 'uuid', description: 'missed_fire only: only this schedule; omitted: every schedule of the tenant.' })
  @Optional()
  @IsUUID('all', { message: 'scheduleId must be a UUID' })
  scheduleId?: string;

  @ApiPropertyOptional({ minimum: 1, maximum: 1000, default: 1, description: 'N: failures (or missed fires) in a row that open the alert.' })
  @Optional()
  @IsInt()
  @Min(1)
  @Max(1000)
  failures?: number;

  @ApiPropertyOptional({ minimum: 1, maximum: 1000, default: 1, description: 'M: successes (or fires that ran) in a row that resolve it.' })
  @Optional()
  @IsInt()
  @Min(1)
  @Max(1000)
  recoveries?: number;

  @ApiPropertyOptional({ minimum: 1, maximum: MAX_SECONDS, description: 'queued_too_long / running_too_long (required there): X or Y, in seconds.' })
  @Optional()
  @IsInt()
  @Min(1)
  @Max(MAX_SECONDS)
  thresholdSeconds?: number;

  @ApiProperty({ format: 'uuid', description: 'The channel told when the alert opens, is re-notified and resolves.' })
  @IsUUID('all', { message: 'channelId must be a UUID' })
  channelId!: string;

  @ApiPropertyOptional({ format: 'uuid', description: 'The second channel, told once the alert is unacknowledged for escalateAfterSeconds.' })
  @Optional()
  @IsUUID('all', { message: 'escalationChannelId must be a UUID' })
  escalationChannelId?: string;

  @ApiPropertyOptional({ minimum: 1, maximum: MAX_SECONDS, description: 'E, in seconds; required with escalationChannelId.' })
  @Optional()
  @IsInt()
  @Min(1)
  @Max(MAX_SECONDS)
  escalateAfterSeconds?: number;

  @ApiPropertyOptional({
    minimum: MIN_RENOTIFY_SECONDS,
    maximum: MAX_SECONDS,
    description: 'R, in seconds (at least 60): a firing, unacknowledged alert is told again at most this often; omitted: never.',
  })
  @Optional()
  @IsInt()
  @Min(MIN_RENOTIFY_SECONDS, { message: `renotifySeconds must be at least ${MIN_RENOTIFY_SECONDS}` })
  @Max(MAX_SECONDS)
  renotifySeconds?: number;

  @ApiPropertyOptional({ default: true }) @Optional() @IsBoolean() enabled?: boolean;
}

/** What a rule's PATCH may change: its counts, thresholds, channels and whether it is on. The kind and target stay. */
export class UpdateAlertRuleDto {
  @ApiPropertyOptional({ minimum: 1, maximum: 1000 }) @Optional() @IsInt() @Min(1) @Max(1000) failures?: number;
  @ApiPropertyOptional({ minimum: 1, maximum: 1000 }) @Optional() @IsInt() @Min(1) @Max(1000) recoveries?: number;
  @ApiPropertyOptional({ minimum: 1, maximum: MAX_SECONDS }) @Optional() @IsInt() @Min(1) @Max(MAX_SECONDS) thresholdSeconds?: number;
  @ApiPropertyOptional({ format: 'uuid' }) @Optional() @IsUUID('all', { message: 'channelId must be a UUID' }) channelId?: string;
  @ApiPropertyOptional({ format: 'uuid', type: String, description: 'null: no escalation.' })
  @Nullable()
  @IsUUID('all', { message: 'escalationChannelId must be a UUID' })
  escalationChannelId?: string | null;
  @ApiPropertyOptional({ minimum: 1, maximum: MAX_SECONDS, type: Number, description: 'null: with escalationChannelId null.' })
  @Nullable()
  @IsInt()
  @Min(1)
  @Max(MAX_SECONDS)
  escalateAfterSeconds?: number | null;
  @ApiPropertyOptional({ minimum: MIN_RENOTIFY_SECONDS, maximum: MAX_SECONDS, type: Number, description: 'null: never re-notify.' })
  @Nullable()
  @IsInt()
  @Min(MIN_RENOTIFY_SECONDS, { message: `renotifySeconds must be at least ${MIN_RENOTIFY_SECONDS}` })
  @Max(MAX_SECONDS)
  renotifySeconds?: number | null;
  @ApiPropertyOptional() @Optional() @IsBoolean() enabled?: boolean;
}

export class AlertRuleResponse {
  @ApiProperty() id!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ enum: RULE_KINDS }) kind!: string;
  @ApiPropertyOptional({ nullable: true, type: String }) taskId!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) scheduleId!: string | null;
  @ApiProperty() failures!: number;
  @ApiProperty() recoveries!: number;
  @ApiPropertyOptional({ nullable: true, type: Number }) thresholdSeconds!: number | null;
  @ApiProperty() channelId!: string;
  @ApiPropertyOptional({ nullable: true, type: String }) escalationChannelId!: string | null;
  @ApiPropertyOptional({ nullable: true, type: Number }) escalateAfterSeconds!: number | null;
  @ApiPropertyOptional({ nullable: true, type: Number }) renotifySeconds!: number | null;
  @ApiProperty() enabled!: boolean;
  @ApiProperty() createdAt!: string;
  @ApiProperty() updatedAt!: string;

  static from(r: AlertRuleEntity): AlertRuleResponse {
    return {
      id: r.id,
      name: r.name,
      kind: r.kind,
      taskId: r.taskId,
      scheduleId: r.scheduleId,
      failures: r.failures,
      recoveries: r.recoveries,
      thresholdSeconds: r.thresholdSeconds,
      channelId: r.channelId,
      escalationChannelId: r.escalationChannelId,
      escalateAfterSeconds: r.escalateAfterSeconds,
      renotifySeconds: r.renotifySeconds,
      enabled: r.enabled,
      createdAt: r.createdAt.toISOString(),
      updatedAt: r.updatedAt.toISOString(),
    };
  }
}

export const AlertRulePage = PageOf(AlertRuleResponse);

export class AlertListQueryDto extends ListQueryDto {
  @ApiPropertyOptional({ enum: ['firing', 'resolved'] })
  @Optional()
  @IsIn(['firing', 'resolved'], { message: 'state must be firing or resolved' })
  state?: 'firing' | 'resolved';

  @ApiPropertyOptional({ format: 'uuid' }) @Optional() @IsUUID('all', { message: 'ruleId must be a UUID' }) ruleId?: string;
}

export class AlertResponse {
  @ApiProperty() id!: string;
  @ApiProperty() ruleId!: string;
  @ApiProperty({ enum: ['task', 'schedule'] }) subjectType!: string;
  @ApiProperty() subjectId!: string;
  @ApiProperty({ enum: ['firing', 'resolved'] }) state!: string;
  @ApiProperty() summary!: string;
  @ApiProperty({ type: 'object', additionalProperties: true, description: 'What opened it: counts, the last run, the runs waiting, the last missed fire.' })
  details!: Record<string, unknown>;
  @ApiProperty() openedAt!: string;
  @ApiPropertyOptional({ nullable: true, type: String }) resolvedAt!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) lastNotifiedAt!: string | null;
  @ApiProperty({ description: 'Notifications of firing and re-notification so far.' }) notifyCount!: number;
  @ApiPropertyOptional({ nullable: true, type: String }) escalatedAt!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) ackedAt!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) ackedBy!: string | null;

  static from(a: AlertEntity): AlertResponse {
    return {
      id: a.id,
      ruleId: a.ruleId,
      subjectType: a.subjectType,
      subjectId: a.subjectId,
      state: a.state,
      summary: a.summary,
      details: a.details,
      openedAt: a.createdAt.toISOString(),
      resolvedAt: isoOrNull(a.resolvedAt),
      lastNotifiedAt: isoOrNull(a.lastNotifiedAt),
      notifyCount: a.notifyCount,
      escalatedAt: isoOrNull(a.escalatedAt),
      ackedAt: isoOrNull(a.ackedAt),
      ackedBy: a.ackedBy,
    };
  }
}

export const AlertPage = PageOf(AlertResponse);

export class AlertNotificationResponse {
  @ApiProperty() id!: string;
  @ApiProperty() channelId!: string;
  @ApiProperty({ enum: ['firing', 'renotify', 'escalation', 'resolved', 'test'] }) event!: string;
  @ApiProperty({ enum: ['pending', 'sent', 'failed', 'cancelled'] }) status!: string;
  @ApiProperty() attempts!: number;
  @ApiPropertyOptional({ nullable: true, type: String }) lastError!: string | null;
  @ApiProperty() createdAt!: string;
  @ApiPropertyOptional({ nullable: true, type: String }) sentAt!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'pending: when the next try is due.' }) nextAttemptAt!: string | null;
}

export class AlertDetailResponse extends AlertResponse {
  @ApiProperty({ type: [AlertNotificationResponse], description: 'Every notification of the alert, oldest first.' })
  notifications!: AlertNotificationResponse[];
}
