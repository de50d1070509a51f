import type { ApiContext } from './context.js';

export type Handler = (ctx: ApiContext) => Promise<void> | void;

interface Route {
  method: string;
  pattern: RegExp;
  keys: string[];
  handler: Handler;
}

/**
 * Path patterns: `:id` matches one segment; `:name*` matches one or more segments (image names
 * such as `localhost:5000/busybox` arrive unescaped).
 */
export class Router {
  readonly #routes: Route[] = [];

  add(method: string, path: string, handler: Handler): this {
    const keys: string[] = [];
    const source = path
      .split('/')
      .map((segment) => {
        const m = /^:([a-zA-Z]+)(\*)?$/.exec(segment);
        if (!m) return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        keys.push(m[1]!);
        return m[2] ? '(.+)' : '([^/]+)';
      })
      .join('/');
    this.#routes.push({ method, pattern: new RegExp(`^${source}/?$`), keys, handler });
    return this;
  }

  /** The handler and params, or `methodNotAllowed` when only the method differs. */
  match(method: string, path: string): { handler: Handler; params: Record<string, string> } | undefined {
    for (const route of this.#routes) {
      if (route.method !== method && !(method === 'HEAD' && route.method === 'GET')) continue;
      const m = route.pattern.exec(path);
      if (!m) continue;
      const params: Record<string, string> = {};
      route.keys.forEach((key, i) => {
        params[key] = decodeURIComponent(m[i + 1]!);
      });
      return { handler: route.handler, params };
    }
    return undefined;
  }
}
