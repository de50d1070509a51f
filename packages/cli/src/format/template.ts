/**
 * The subset of Go's text/template that docker `--format` users write:
 *   {{.Field}} {{.Field.Sub}} {{.}}  {{json .}} {{json .Field}}  {{index .Labels "k"}}
 *   {{upper .X}} {{lower .X}} {{title .X}} {{join .List ","}} {{split .X ","}} {{truncate .X 5}}
 *   {{printf "%s-%d" .A .B}} {{.Label "key"}} (method-style calls on context objects)
 *   pipelines: {{.Names | upper}} {{.Labels | json}}
 *   {{if .X}}…{{else}}…{{end}} and {{range .List}}…{{end}} (with {{.}} the item)
 *   `\t` and `\n` escapes in the format string, as the docker CLI accepts them.
 * Anything else is a TemplateError naming the action.
 */
export class TemplateError extends Error {}

type Value = unknown;
type Node =
  | { kind: 'text'; text: string }
  | { kind: 'action'; pipeline: string }
  | { kind: 'if'; pipeline: string; then: Node[]; else: Node[] }
  | { kind: 'range'; pipeline: string; body: Node[] };

export interface Template {
  execute(data: Value): string;
  /** The `table` prefix was present (header row wanted). */
  readonly table: boolean;
}

export function parseTemplate(source: string): Template {
  let text = source.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  let table = false;
  if (/^table(\s|$)/.test(text)) {
    table = true;
    text = text.replace(/^table\s*/, '');
  }
  const tokens = tokenize(text);
  let pos = 0;
  function parseList(stopAt: string[]): { nodes: Node[]; stop: string } {
    const nodes: Node[] = [];
    while (pos < tokens.length) {
      const t = tokens[pos++]!;
      if (t.kind === 'text') {
        nodes.push(t);
        continue;
      }
      const action = t.pipeline.trim();
      const word = action.split(/\s+/)[0]!;
      if (stopAt.includes(word)) return { nodes, stop: word };
      if (word === 'if') {
        const thenPart = parseList(['else', 'end']);
        let elsePart: Node[] = [];
        if (thenPart.stop === 'else') elsePart = parseList(['end']).nodes;
        nodes.push({ kind: 'if', pipeline: action.slice(2).trim(), then: thenPart.nodes, else: elsePart });
      } else if (word === 'range') {
        const body = parseList(['end']);
        nodes.push({ kind: 'range', pipeline: action.slice(5).trim(), body: body.nodes });
      } else if (word === 'end' || word === 'else') {
        throw new TemplateError(`template: unexpected {{${word}}}`);
      } else {
        nodes.push({ kind: 'action', pipeline: action });
      }
    }
    if (stopAt.length > 0) throw new TemplateError(`template: missing {{end}}`);
    return { nodes, stop: '' };
  }
  const nodes = parseList([]).nodes;
  return {
    table,
    execute(data: Value): string {
      return run(nodes, data);
    },
  };
}

function tokenize(text: string): ({ kind: 'text'; text: string } | { kind: 'action'; pipeline: string })[] {
  const out: ({ kind: 'text'; text: string } | { kind: 'action'; pipeline: string })[] = [];
  let i = 0;
  while (i < text.length) {
    const open = text.indexOf('{{', i);
    if (open < 0) {
      out.push({ kind: 'text', text: text.slice(i) });
      break;
    }
    if (open > i) out.push({ kind: 'text', text: text.slice(i, open) });
    const close = text.indexOf('}}', open + 2);
    if (close < 0) throw new TemplateError(`template: unclosed action at ${open}`);
    let inner = text.slice(open + 2, close);
    // {{- and -}} trim markers.
    if (inner.startsWith('-')) {
      inner = inner.slice(1);
      const last = out[out.length - 1];
      if (last && last.kind === 'text') last.text = last.text.replace(/\s+$/, '');
    }
    let trimAfter = false;
    if (inner.endsWith('-')) {
      inner = inner.slice(0, -1);
      trimAfter = true;
    }
    out.push({ kind: 'action', pipeline: inner });
    i = close + 2;
    if (trimAfter) while (i < text.length && /\s/.test(text[i]!)) i++;
  }
  return out;
}

function run(nodes: Node[], data: Value): string {
  let out = '';
  for (const node of nodes) {
    if (node.kind === 'text') out += node.text;
    else if (node.kind === 'action') out += toText(evalPipeline(node.pipeline, data));
    else if (node.kind === 'if') out += run(truthy(evalPipeline(node.pipeline, data)) ? node.then : node.else, data);
    else {
      const list = evalPipeline(node.pipeline, data);
      const items = Array.isArray(list) ? list : list && typeof list === 'object' ? Object.values(list) : [];
      for (const item of items) out += run(node.body, item);
    }
  }
  return out;
}

function truthy(v: Value): boolean {
  if (Array.isArray(v)) return v.length > 0;
  if (v && typeof v === 'object') return Object.keys(v).length > 0;
  return Boolean(v);
}

/** How Go prints values with {{.X}}: maps as map[k:v], slices as [a b], nil as <no value>. */
export function toText(v: Value): string {
  if (v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return `[${v.map(toText).join(' ')}]`;
  if (typeof v === 'function') return toText((v as () => Value)());
  if (typeof v === 'object') {
    const text = (v as { toString?: () => string }).toString?.();
    if (text && text !== '[object Object]') return text;
    return `map[${Object.keys(v as object)
      .sort()
      .map((k) => `${k}:${toText((v as Record<string, Value>)[k])}`)
      .join(' ')}]`;
  }
  return String(v);
}

function splitArgs(expr: string): string[] {
  const args: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|`([^`]*)`|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(expr)) !== null) args.push(m[0]);
  return args;
}

function evalPipeline(pipeline: string, data: Value): Value {
  const stages = splitPipes(pipeline);
  let value: Value = undefined;
  stages.forEach((stage, i) => {
    const args = splitArgs(stage.trim());
    if (args.length === 0) throw new TemplateError(`template: empty command in {{${pipeline}}}`);
    value = evalCommand(args, data, i === 0 ? undefined : { value });
  });
  return value;
}

function splitPipes(pipeline: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: string | null = null;
  for (const c of pipeline) {
    if (quote) {
      cur += c;
      if (c === quote) quote = null;
    } else if (c === '"' || c === '`') {
      quote = c;
      cur += c;
    } else if (c === '|') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

function evalArg(arg: string, data: Value): Value {
  if (arg.startsWith('"')) return JSON.parse(arg) as string;
  if (arg.startsWith('`')) return arg.slice(1, -1);
  if (/^-?\d+(\.\d+)?$/.test(arg)) return Number(arg);
  if (arg === 'true' || arg === 'false') return arg === 'true';
  if (arg === '.' ) return data;
  if (arg.startsWith('.')) return field(data, arg);
  if (arg === '$') return data;
  throw new TemplateError(`template: function "${arg}" not defined`);
}

function field(data: Value, path: string, args: Value[] = []): Value {
  let cur: Value = data;
  const parts = path.split('.').slice(1);
  parts.forEach((name, i) => {
    if (cur === null || cur === undefined) {
      cur = undefined;
      return;
    }
    const next = (cur as Record<string, Value>)[name];
    // The top-level object stands for a Go struct (unknown field: error); nested objects are maps
    // (missing key: <no value>).
    if (next === undefined && !(name in Object(cur)) && (i === 0 || typeName(cur) !== 'map')) {
      throw new TemplateError(`template: can't evaluate field ${name} in type ${typeName(cur)}`);
    }
    cur = typeof next === 'function' ? (next as (...a: Value[]) => Value).apply(cur, i === parts.length - 1 ? args : []) : next;
  });
  return cur;
}

function typeName(v: Value): string {
  if (Array.isArray(v)) return 'slice';
  if (v && typeof v === 'object') return (v as object).constructor?.name === 'Object' ? 'map' : ((v as object).constructor?.name ?? 'object');
  return typeof v;
}

const FUNCTIONS: Record<string, (...args: Value[]) => Value> = {
  json: (v) => JSON.stringify(v === undefined ? null : v),
  upper: (v) => toText(v).toUpperCase(),
  lower: (v) => toText(v).toLowerCase(),
  title: (v) => toText(v).replace(/\b\w/g, (c) => c.toUpperCase()),
  join: (list, sep) => (Array.isArray(list) ? list.map(toText).join(toText(sep)) : toText(list)),
  split: (s, sep) => toText(s).split(toText(sep)),
  truncate: (s, n) => [...toText(s)].slice(0, Number(n)).join(''),
  pad: (s, l, r) => ' '.repeat(Number(l)) + toText(s) + ' '.repeat(Number(r)),
  len: (v) => (Array.isArray(v) || typeof v === 'string' ? v.length : v && typeof v === 'object' ? Object.keys(v).length : 0),
  index: (v, ...keys) => {
    let cur = v;
    for (const k of keys) cur = cur === null || cur === undefined ? undefined : (cur as Record<string, Value>)[String(k)];
    return cur === undefined ? '' : cur;
  },
  printf: (fmt, ...args) => {
    let i = 0;
    return toText(fmt).replace(/%([-+ 0#]*\d*(?:\.\d+)?)([svdqf%])/g, (_m, _flags: string, verb: string) => {
      if (verb === '%') return '%';
      const a = args[i++];
      if (verb === 'q') return JSON.stringify(toText(a));
      if (verb === 'd') return String(Math.trunc(Number(a)));
      if (verb === 'f') return Number(a).toFixed(6);
      return toText(a);
    });
  },
  println: (...args) => `${args.map(toText).join(' ')}\n`,
};

function evalCommand(args: string[], data: Value, piped: { value: Value } | undefined): Value {
  const head = args[0]!;
  const rest = args.slice(1).map((a) => evalArg(a, data));
  if (piped) rest.push(piped.value);
  if (head.startsWith('.') && head !== '.') return field(data, head, rest);
  if (head === '.' || head.startsWith('"') || /^-?\d/.test(head)) {
    if (args.length > 1 && !piped) throw new TemplateError(`template: can't give argument to non-function ${head}`);
    return evalArg(head, data);
  }
  const fn = FUNCTIONS[head];
  if (!fn) throw new TemplateError(`template: function "${head}" not defined`);
  return fn(...rest);
}
