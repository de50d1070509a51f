/** The error body of the OCI distribution spec (`{"errors": [{"code", "message", "detail"}]}`). */
import type { SchemaObject } from 'ajv';
import { ERROR_CODE_PATTERN, string } from './common.js';

export const distributionErrorSchema: SchemaObject = {
  type: 'object',
  required: ['errors'],
  properties: {
    errors: {
      type: 'array',
      items: {
        type: 'object',
        required: ['code'],
        properties: {
          code: { type: 'string', pattern: ERROR_CODE_PATTERN },
          message: string,
          detail: {},
        },
      },
    },
  },
};
