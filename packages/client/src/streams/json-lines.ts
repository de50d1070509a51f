import { ClientError } from '../errors.js';

/**
 * Parses a stream of JSON objects written back to back (newline-terminated, `\r\n` tolerated,
 * and also concatenated without separators as some daemons do) into values.
 */
export async function* jsonLines<T>(source: AsyncIterable<Uint8Array>): AsyncGenerator<T> {
  const decoder = new TextDecoder();
  let text = '';
  for await (const chunk of source) {
    text += decoder.decode(chunk, { stream: true });
    let start = 0;
    for (;;) {
      const end = findObjectEnd(text, start);
      if (end < 0) break;
      const piece = text.slice(start, end).trim();
      start = end;
      if (piece === '') continue;
      yield parse<T>(piece);
    }
    text = text.slice(start);
  }
  text += decoder.decode();
  const rest = text.trim();
  if (rest !== '') yield parse<T>(rest);
}

function parse<T>(piece: string): T {
  try {
    return JSON.parse(piece) as T;
  } catch (error) {
    throw new ClientError('BAD_JSON_STREAM', 'internal', `the daemon sent a line that is not JSON: ${piece.slice(0, 200)}`, { cause: error });
  }
}

/** Index just past the first complete top-level JSON value starting at `from`, or -1. */
function findObjectEnd(text: string, from: number): number {
  let depth = 0;
  let inString = false;
  let escaped = false;
  let started = false;
  for (let i = from; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      if (escaped) escaped = false;
      else if (c === '\\') escaped = true;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') {
      inString = true;
      started = true;
    } else if (c === '{' || c === '[') {
      depth++;
      started = true;
    } else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) return i + 1;
    } else if (c === '\n' && started && depth === 0) {
      return i + 1;
    } else if (!/\s/.test(c)) {
      started = true;
    }
  }
  return -1;
}
