import { describe, expect, it } from 'vitest';
import { renderList, renderObject } from './list.js';
import { alignTable } from './table.js';

describe('tables and --format', () => {
  const rows = [
    { ID: 'aaaaaaaaaaaa', Names: 'web', Status: 'Up 5 minutes' },
    { ID: 'bbbbbbbbbbbb', Names: 'a-much-longer-name', Status: 'Exited (0) 2 hours ago' },
  ];
  const headers = { ID: 'CONTAINER ID', Names: 'NAMES', Status: 'STATUS' };

  it('aligns columns like docker (tabwriter minwidth 10, padding 3, last column unpadded)', () => {
    expect(alignTable(['a\tbb\tc', 'dddd\te\tf'])).toEqual(['a         bb        c', 'dddd      e         f']);
    expect(alignTable(['a-very-long-cell\tx'])).toEqual(['a-very-long-cell   x']);
  });

  it('renders the default table with headers', () => {
    const out = renderList(rows, { defaultTable: 'table {{.ID}}\t{{.Names}}\t{{.Status}}', headers });
    expect(out).toBe(
      'CONTAINER ID   NAMES                STATUS\n' +
        'aaaaaaaaaaaa   web                  Up 5 minutes\n' +
        'bbbbbbbbbbbb   a-much-longer-name   Exited (0) 2 hours ago\n',
    );
  });

  it('renders `table TEMPLATE`, a bare template, json and quiet', () => {
    expect(renderList(rows, { format: 'table {{.Names}}\\t{{.Status}}', defaultTable: '', headers })).toBe(
      'NAMES                STATUS\nweb                  Up 5 minutes\na-much-longer-name   Exited (0) 2 hours ago\n',
    );
    expect(renderList(rows, { format: '{{.Names}}', defaultTable: '', headers })).toBe('web\na-much-longer-name\n');
    expect(renderList(rows.slice(0, 1), { format: 'json', defaultTable: '', headers })).toBe('{"ID":"aaaaaaaaaaaa","Names":"web","Status":"Up 5 minutes"}\n');
    expect(renderList(rows, { quiet: true, defaultTable: '', headers })).toBe('aaaaaaaaaaaa\nbbbbbbbbbbbb\n');
  });

  it('makes headers for fields it has no title for', () => {
    expect(renderList([{ CreatedSince: 'x' }], { format: 'table {{.CreatedSince}}', defaultTable: '', headers: {} })).toBe('CREATED SINCE\nx\n');
  });

  it('prints one object as indented JSON or through a template', () => {
    expect(renderObject({ a: 1 }, undefined)).toBe('{\n    "a": 1\n}\n');
    expect(renderObject({ State: { Status: 'running' } }, '{{.State.Status}}')).toBe('running\n');
  });
});
