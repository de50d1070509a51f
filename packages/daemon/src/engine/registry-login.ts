import type { AuthBody } from '../api/types.js';

/** Validates registry credentials for `POST /auth` (the daemon stores nothing). */
export interface RegistryLogin {
  login(auth: AuthBody): Promise<{ Status: string; IdentityToken: string }>;
}
