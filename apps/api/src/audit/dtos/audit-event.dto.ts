import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import type { AuditEventEntity } from '@task-scheduler/db';
import { IsIn, IsString, Matches } from 'class-validator';
import { Optional } from '../../common/validation';
import { ListQueryDto } from '../../common/list-query.dto';
import { PageOf } from '../../common/page.dto';

export class ListAuditEventsQueryDto extends ListQueryDto {
  @ApiPropertyOptional({ example: 'task.create' })
  @Optional()
  @IsString()
  @Matches(/^[a-z_]+\.[a-z_]+$/, { message: 'action looks like task.create' })
  action?: string;

  @ApiPropertyOptional({ enum: ['success', 'failure'] })
  @Optional()
  @IsIn(['success', 'failure'])
  outcome?: 'success' | 'failure';

  @ApiPropertyOptional({ description: 'Platform admin only: a tenant id, or `all` for every tenant. Default: your own tenant.' })
  @Optional()
  @Matches(/^(all|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i, { message: 'tenantId must be a tenant id or all' })
  tenantId?: string;
}

export class AuditEventResponse {
  @ApiProperty() id!: string;
  @ApiPropertyOptional({ nullable: true, type: String }) tenantId!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'The API key that acted.' }) actorKeyId!: string | null;
  @ApiProperty() action!: string;
  @ApiPropertyOptional({ nullable: true, type: String }) targetType!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) targetId!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) requestId!: string | null;
  @ApiProperty({ enum: ['success', 'failure'] }) outcome!: string;
  @ApiProperty({ type: Object }) details!: Record<string, unknown>;
  @ApiProperty() createdAt!: string;

  static from(e: AuditEventEntity): AuditEventResponse {
    return {
      id: e.id,
      tenantId: e.tenantId,
      actorKeyId: e.actorKeyId,
      action: e.action,
      targetType: e.targetType,
      targetId: e.targetId,
      requestId: e.requestId,
      outcome: e.outcome,
      details: e.details,
      createdAt: e.createdAt.toISOString(),
    };
  }
}

export const AuditEventPage = PageOf(AuditEventResponse);
