import { describe, expect, it } from 'vitest';
import { TemplateError, parseTemplate } from './template.js';

describe('Go template subset', () => {
  const row = { ID: 'abc', Names: 'web', Labels: { a: '1', b: '2' }, List: ['x', 'y'], Count: 3, Label: (k: string) => ({ a: '1' })[k] ?? '' };

  it('renders fields, nested fields and the table prefix', () => {
    expect(parseTemplate('{{.ID}}').execute(row)).toBe('abc');
    expect(parseTemplate('{{.Labels.a}}-{{.Count}}').execute(row)).toBe('1-3');
    const t = parseTemplate('table {{.Names}}\\t{{.ID}}');
    expect(t.table).toBe(true);
    expect(t.execute(row)).toBe('web\tabc');
  });

  it('has json, upper, lower, join, index, printf, truncate, pipelines and method calls', () => {
    expect(parseTemplate('{{json .Labels}}').execute(row)).toBe('{"a":"1","b":"2"}');
    expect(parseTemplate('{{json .}}').execute({ A: 1 })).toBe('{"A":1}');
    expect(parseTemplate('{{upper .Names}} {{.Names | upper}}').execute(row)).toBe('WEB WEB');
    expect(parseTemplate('{{lower "ABC"}}').execute(row)).toBe('abc');
    expect(parseTemplate('{{join .List ","}}').execute(row)).toBe('x,y');
    expect(parseTemplate('{{index .Labels "b"}}').execute(row)).toBe('2');
    expect(parseTemplate('{{printf "%s=%d" .Names .Count}}').execute(row)).toBe('web=3');
    expect(parseTemplate('{{truncate .Names 2}}').execute(row)).toBe('we');
    expect(parseTemplate('{{.Label "a"}}').execute(row)).toBe('1');
  });

  it('prints Go forms for maps, slices and missing values', () => {
    expect(parseTemplate('{{.Labels}}').execute(row)).toBe('map[a:1 b:2]');
    expect(parseTemplate('{{.List}}').execute(row)).toBe('[x y]');
    expect(parseTemplate('{{.Labels.zzz}}').execute(row)).toBe('<no value>');
  });

  it('supports if/else/end and range', () => {
    expect(parseTemplate('{{if .Count}}yes{{else}}no{{end}}').execute(row)).toBe('yes');
    expect(parseTemplate('{{if .Missing}}yes{{else}}no{{end}}').execute({ Missing: '' })).toBe('no');
    expect(parseTemplate('{{range .List}}<{{.}}>{{end}}').execute(row)).toBe('<x><y>');
    expect(parseTemplate('{{range $v := .List}}{{end}}x').execute).toBeTypeOf('function');
  });

  it('reports unknown fields and functions like Go', () => {
    expect(() => parseTemplate('{{.Nope}}').execute(row)).toThrow(TemplateError);
    expect(() => parseTemplate('{{.Nope}}').execute(row)).toThrow(/can't evaluate field Nope/);
    expect(() => parseTemplate('{{nosuch .ID}}').execute(row)).toThrow(/function "nosuch" not defined/);
    expect(() => parseTemplate('{{if .ID}}x').execute(row)).toThrow(/missing \{\{end\}\}/);
  });
});
