import { alignTable } from './table.js';
import { TemplateError, parseTemplate, toText } from './template.js';

/**
 * Prints rows the way docker's formatter does:
 *  - `table` (default): the default columns with a header, aligned;
 *  - `table TEMPLATE`: the given columns with a header made from the field names;
 *  - `json`: one JSON object per line (`{{json .}}`);
 *  - any other `TEMPLATE`: one rendered line per row, no header.
 * `quiet` prints only `quietField`. Headers: `headers[Field]`, else the field name upper-cased.
 */
export function renderList<T extends object>(
  rows: T[],
  options: { format?: string; quiet?: boolean; defaultTable: string; quietField?: string; headers: Record<string, string> },
): string {
  if (options.quiet && (!options.format || options.format === 'table')) {
    return rows.map((r) => `${toText((r as Record<string, unknown>)[options.quietField ?? 'ID'])}\n`).join('');
  }
  let format = options.format && options.format !== '' ? options.format : 'table';
  if (format === 'table') format = options.defaultTable;
  if (format === 'json') format = '{{json .}}';
  const template = parseTemplate(format);
  const lines = rows.map((r) => template.execute(r));
  if (!template.table) return lines.map((l) => `${l}\n`).join('');
  const header = template.execute(headerProxy(options.headers));
  return alignTable([header, ...lines].flatMap((l) => l.split('\n')))
    .map((l) => `${l}\n`)
    .join('');
}

/** An object whose every field is its own column title (for rendering a table header). */
function headerProxy(headers: Record<string, string>): object {
  return new Proxy(
    {},
    {
      get(_t, name) {
        if (typeof name !== 'string') return undefined;
        if (name === 'toString') return () => 'map[]';
        const title = headers[name] ?? name.replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase();
        const fn = (): string => title;
        fn.toString = () => title;
        return fn;
      },
      has() {
        return true;
      },
    },
  );
}

export { TemplateError };

/** `--format` for one object (inspect, version, info): a template, or indented JSON by default. */
export function renderObject(value: unknown, format: string | undefined): string {
  if (!format) return `${JSON.stringify(value, null, 4)}\n`;
  if (format === 'json') return `${JSON.stringify(value)}\n`;
  return `${parseTemplate(format).execute(value)}\n`;
}
