import type { BerthErrorOptions, ErrorCategory } from '@berth/oci-spec';
import { RuntimeError } from '../errors.js';

/**
 * Base of every error the network code throws on purpose (a `RuntimeError`). `code` is stable; `category` is what
 * the daemon maps to an HTTP status (not-found → 404, conflict → 409, invalid → 400, ...).
 */
export class NetworkError extends RuntimeError {
  constructor(code: string, category: ErrorCategory, message: string, options?: BerthErrorOptions) {
    super(code, category, message, options);
  }
}

/** `network <name> not found` — Docker's wording, which clients match on. */
export class NetworkNotFoundError extends NetworkError {
  constructor(nameOrId: string, options?: BerthErrorOptions) {
    super('NETWORK_NOT_FOUND', 'not-found', `network ${nameOrId} not found`, options);
  }
}

/** A network that still has endpoints refuses removal. */
export class NetworkInUseError extends NetworkError {
  constructor(name: string, containers: string[]) {
    super(
      'NETWORK_IN_USE',
      'conflict',
      `error while removing network: network ${name} has active endpoints (${containers.join(', ')})`,
    );
  }
}

/** A requested host port (or address) is taken by another container or a host process. */
export class PortAllocatedError extends NetworkError {
  constructor(hostIp: string, hostPort: number, proto: string, options?: BerthErrorOptions) {
    super(
      'PORT_ALLOCATED',
      'conflict',
      `Bind for ${hostIp.includes(':') ? `[${hostIp}]` : hostIp}:${hostPort}/${proto} failed: port is already allocated`,
      options,
    );
  }
}

/** A host command (ip, nft, sysctl, aardvark-dns) failed; the message carries its stderr. */
export class NetworkCommandError extends NetworkError {
  constructor(command: string, stderr: string, options?: BerthErrorOptions) {
    super('NETWORK_COMMAND_FAILED', 'internal', `${command}: ${stderr.trim() || 'failed'}`, options);
  }
}
