import { describe, expect, it } from 'vitest';
import { isAllowed, nextStatus } from './state-machine.js';
import type { ContainerStatus, LifecycleOperation } from './state-machine.js';

const table: Record<LifecycleOperation, ContainerStatus[]> = {
  start: ['created'],
  pause: ['running'],
  unpause: ['paused'],
  kill: ['created', 'running', 'paused'],
  stop: ['created', 'running', 'paused', 'stopped'],
  delete: ['created', 'stopped'],
  exec: ['running'],
  attach: ['created', 'running', 'paused'],
  update: ['created', 'running', 'paused'],
  resize: ['created', 'running', 'paused'],
};
const all: ContainerStatus[] = ['created', 'running', 'paused', 'stopped'];

describe('lifecycle state machine', () => {
  for (const [op, allowed] of Object.entries(table) as [LifecycleOperation, ContainerStatus[]][]) {
    for (const s of all) {
      it(`${op} from ${s} is ${allowed.includes(s) ? 'allowed' : 'refused'}`, () => {
        expect(isAllowed(op, s)).toBe(allowed.includes(s));
      });
    }
  }
  it('force delete is allowed from every state', () => {
    for (const s of all) expect(isAllowed('delete', s, true)).toBe(true);
  });
  it('names the state each transition leads to', () => {
    expect(nextStatus('start', 'created')).toBe('running');
    expect(nextStatus('pause', 'running')).toBe('paused');
    expect(nextStatus('unpause', 'paused')).toBe('running');
    expect(nextStatus('stop', 'running')).toBe('stopped');
    expect(nextStatus('delete', 'stopped')).toBeNull();
    expect(nextStatus('exec', 'running')).toBeUndefined();
  });
});
