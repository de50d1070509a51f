/**
 * Column alignment like Go's text/tabwriter as the docker CLI configures it
 * (minwidth 10, padding 3, spaces): cells end at `\t`; the last cell of a line is not padded.
 */
export function alignTable(lines: string[], minWidth = 10, padding = 3): string[] {
  const rows = lines.map((line) => line.split('\t'));
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      if (i === row.length - 1) return;
      widths[i] = Math.max(widths[i] ?? 0, displayWidth(cell) + padding, minWidth);
    });
  }
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat(Math.max(0, (widths[i] ?? 0) - displayWidth(cell)))))
      .join('')
      .replace(/\s+$/, ''),
  );
}

function displayWidth(text: string): number {
  return [...text].length;
}
