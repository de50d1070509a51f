import { EventEmitter } from 'node:events';

/** One event as `GET /events` streams it (moby events.Message, with the legacy fields). */
export interface EngineEvent {
  Type: 'container' | 'image' | 'network' | 'volume' | 'daemon' | 'builder';
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local';
  time: number;
  timeNano: number;
  status?: string;
  id?: string;
  from?: string;
}

const HISTORY = 1024;

/**
 * The daemon's event log: a bounded history (for `since`) and live subscribers. Publishing never
 * blocks on a slow subscriber; each subscriber is a plain callback that writes to its response.
 */
export class EventBus {
  readonly #history: EngineEvent[] = [];
  readonly #emitter = new EventEmitter();

  constructor() {
    this.#emitter.setMaxListeners(0);
  }

  publish(
    type: EngineEvent['Type'],
    action: string,
    id: string,
    attributes: Record<string, string> = {},
  ): EngineEvent {
    const now = process.hrtime.bigint();
    const wall = BigInt(Date.now()) * 1_000_000n + (now % 1_000_000n);
    const event: EngineEvent = {
      Type: type,
      Action: action,
      Actor: { ID: id, Attributes: attributes },
      scope: 'local',
      time: Number(wall / 1_000_000_000n),
      timeNano: Number(wall),
    };
    if (type === 'container' || type === 'image') {
      event.status = action;
      event.id = id;
      if (type === 'container' && attributes['image'] !== undefined) event.from = attributes['image'];
    }
    this.#history.push(event);
    if (this.#history.length > HISTORY) this.#history.shift();
    this.#emitter.emit('event', event);
    return event;
  }

  /** Events recorded at or after `sinceNano` (ns since the epoch). */
  since(sinceNano: bigint): EngineEvent[] {
    return this.#history.filter((e) => BigInt(e.timeNano) >= sinceNano);
  }

  subscribe(listener: (event: EngineEvent) => void): () => void {
    this.#emitter.on('event', listener);
    return () => this.#emitter.off('event', listener);
  }
}
