/**
 * Validation decorators shared by every DTO, and the translation of class-validator's errors into the
 * API's error details. DTOs use {@link Optional} and {@link Nullable}, never class-validator's
 * `IsOptional` (the lint forbids it): `IsOptional` lets `null` through every other validator, which is
 * how `{"shell":{"script":null}}` once ran `/bin/sh -c null`.
 */
import { applyDecorators } from '@nestjs/common';
import { ValidateBy, ValidateIf, registerDecorator } from 'class-validator';
import type { ValidationError, ValidationOptions } from 'class-validator';
import type { ErrorDetail } from './api-error';
import { jsonDepth, pathOf } from './input-rules';

/** The property may be left out; when given, it is validated, and `null` is refused like any other wrong value. */
export function Optional(): PropertyDecorator {
  return ValidateIf((_object: unknown, value: unknown) => value !== undefined);
}

/** The name of the marker {@link Nullable} leaves in class-validator's metadata; common/openapi.ts reads it. */
export const IS_NULLABLE = 'isNullable';

/**
 * The property may be left out or be `null`, which means "none" (e.g. clearing a limit in a PATCH);
 * any other value is validated. Say in the field's description what `null` does. The OpenAPI document marks the
 * property `nullable` from this decorator (a marker rule that never fails), so no `@ApiProperty({ nullable })` is needed.
 */
export function Nullable(): PropertyDecorator {
  return applyDecorators(
    ValidateIf((_object: unknown, value: unknown) => value !== undefined && value !== null),
    ValidateBy({ name: IS_NULLABLE, validator: { validate: () => true } }),
  );
}

export const IS_BOUNDED_JSON_OBJECT = 'isBoundedJsonObject';

/**
 * A free-form JSON object (e.g. metadata) at most `maxDepth` levels deep (the object itself is level 1)
 * and at most `maxBytes` long as JSON, so what is stored can always be read back by ordinary clients.
 */
export function IsBoundedJsonObject(bounds: { maxDepth: number; maxBytes: number }, options?: ValidationOptions): PropertyDecorator {
  return (target, propertyName) =>
    registerDecorator({
      name: IS_BOUNDED_JSON_OBJECT,
      target: target.constructor,
      propertyName: propertyName as string,
      // Kept as the rule's constraint so that common/openapi.ts can state the bounds in the document.
      constraints: [bounds],
      options,
      validator: {
        validate: (v: unknown) =>
          typeof v === 'object' &&
          v !== null &&
          !Array.isArray(v) &&
          jsonDepth(v, bounds.maxDepth) <= bounds.maxDepth &&
          Buffer.byteLength(JSON.stringify(v)) <= bounds.maxBytes,
        defaultMessage: (args) =>
          `${args?.property} must be a JSON object at most ${bounds.maxDepth} levels deep and ${bounds.maxBytes} bytes long`,
      },
    });
}

/** class-validator's errors as error details, one per broken constraint, each naming its field (`spec.calendars[0].hour`). */
export function validationDetails(errors: ValidationError[], parent = ''): ErrorDetail[] {
  return errors.flatMap((e) => {
    const field = /^\d+$/.test(e.property) && parent ? pathOf(parent, Number(e.property)) : pathOf(parent, e.property);
    const own = Object.values(e.constraints ?? {}).map((message) => ({
      field,
      message: message.startsWith('property ') ? `${field} is not a known field` : message,
    }));
    return [...own, ...validationDetails(e.children ?? [], field)];
  });
}
